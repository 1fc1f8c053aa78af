"""`connect(url)`: a store from a URL (SPEC §11)."""

from __future__ import annotations

from factstr._factstr import EventStore, MemoryStore


def connect(url: str) -> EventStore:
    """Open the store a URL names.

    - ``memory://``: a new, empty Memory store.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, separator, _rest = url.partition("://")
    if not separator:
        raise ValueError(f"not a store URL (expected scheme://...): {url!r}")
    if scheme == "memory":
        return MemoryStore()
    raise ValueError(f"unsupported store URL scheme {scheme!r}; use memory://")
