"""YAML from outside (a taxonomy an editor pastes, a sidecar or front matter in an upload), read without the
two ways a few hundred bytes take the service down: aliases, which eight nested levels of ("billion laughs")
expand into billions of nodes, and nesting thousands deep, which exhausts the parser's stack. Neither has a use
in the files this service reads, so both are refused while the text is composed, before anything walks it."""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64  # a taxonomy nests six levels


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases and nesting deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed: write the value out",
                                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def compose_and_load(text: str, loader_class: type[SafeLoader] = SafeLoader) -> tuple[yaml.Node | None, Any]:
    """The document's node tree and its data, composed once; raises yaml.YAMLError for anything refused (an
    integer too long for int() included)."""
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    except ValueError as exc:  # int() refuses 100,000 digits with a ValueError, not a YAML error
        raise yaml.YAMLError(str(exc)) from exc
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """The data of YAML ``text`` from outside, as yaml.safe_load gives it, with aliases and deep nesting refused."""
    return compose_and_load(text)[1]
