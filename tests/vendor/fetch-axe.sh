#!/bin/sh
# Vendors axe-core (the accessibility engine the browser tests run on every console page) from npm: the
# tarball npm serves, checked against the integrity hash pinned here, unpacked to tests/vendor/axe-core/.
# Run it to move to another version (change both lines below); the tests never fetch anything.
set -eu
VERSION=4.11.4
INTEGRITY=sha512-KunSNx+TVpkAw/6ULfhnx+HWRecjqZGTOyquAoWHYLRSdK1tB5Ihce1ZW+UY3fj33bYAFWPu7W/GRSmmrCGuxA==
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "axe-core@$VERSION" >/dev/null
GOT="sha512-$(openssl dgst -sha512 -binary "axe-core-$VERSION.tgz" | base64 -w0)"
[ "$GOT" = "$INTEGRITY" ] || { echo "axe-core-$VERSION.tgz: integrity $GOT, expected $INTEGRITY" >&2; exit 1; }
tar xzf "axe-core-$VERSION.tgz"
mkdir -p "$HERE/axe-core"
cp package/axe.min.js package/LICENSE "$HERE/axe-core/"
printf 'axe-core %s from npm, %s\n' "$VERSION" "$INTEGRITY" > "$HERE/axe-core/VERSION"
echo "axe-core $VERSION vendored in $HERE/axe-core"
