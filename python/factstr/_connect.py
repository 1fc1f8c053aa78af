"""`connect(url)`: a store from a URL (SPEC §11)."""

from __future__ import annotations

from factstr._factstr import EventStore, MemoryStore, PostgresStore, SqliteStore


def connect(url: str) -> EventStore:
    """Open the store a URL names.

    - ``memory://``: a new, empty Memory store;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention: three slashes, then the path);
    - ``postgresql://...`` or ``postgres://...``: a PostgreSQL database (libpq URL syntax,
      including ``sslmode`` and ``sslrootcert``).
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"not a store URL (expected scheme://...): {url!r}")
    if scheme == "memory":
        if rest:
            raise ValueError(f"memory:// takes no path, got {url!r}")
        return MemoryStore()
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ValueError(
                f"a SQLite URL is sqlite:///relative.db or sqlite:////absolute/path.db, got {url!r}"
            )
        return SqliteStore(rest[1:])
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}; use memory://, sqlite:///, postgresql:// or postgres://"
    )
