"""Run a command with busy loops beside it, as a laptop doing other work would: ``make test-load``.

    python -m tests.cpu_hog [--cores 1] [--max-seconds 5400] -- make test

Each loop is a child process that spins on one core until the command ends, or until ``--max-seconds``
at the latest (the loop is bounded by itself, so nothing is left spinning if this script is killed).
The exit code is the command's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def spin(until: float) -> None:
    """Busy work on one core until the monotonic clock passes ``until``."""
    x = 0
    while time.monotonic() < until:
        for _ in range(100_000):
            x = (x * 1_103_515_245 + 12_345) & 0x7FFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=1, help="busy loops to run (one core each)")
    parser.add_argument("--max-seconds", type=float, default=5400.0, help="a loop stops by itself after this")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run beside them")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    until = time.monotonic() + args.max_seconds
    hogs = [multiprocessing.Process(target=spin, args=(until,), daemon=True) for _ in range(args.cores)]
    for hog in hogs:
        hog.start()
    print(f"cpu_hog: {args.cores} busy loop(s) (pids {[h.pid for h in hogs]}) beside: {' '.join(command)}",
          flush=True)
    started = time.monotonic()
    try:
        rc = subprocess.call(command, env=os.environ.copy())
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(timeout=10)
    print(f"cpu_hog: command exited {rc} after {time.monotonic() - started:.0f} s with the loops beside it",
          flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
