"""Child-process entry point: optimise (build HNSW for) a copy of an embedded shard.

Runs apart from the service because ``EdgeShard.optimize()`` holds the GIL until it finishes.
"""

from __future__ import annotations

import sys

from qdrant_edge import EdgeShard


def main(path: str) -> int:
    shard = EdgeShard.load(path)
    shard.optimize()
    shard.flush()
    shard.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
