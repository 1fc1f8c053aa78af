"""`connect(url)`: a store from a URL (SPEC §11), and the one parser of such URLs.

A URL's query parameters that name a keyword option of the store's constructor are that option
(``sqlite:///app.db?synchronous=normal&busy_timeout=2``,
``postgresql://h/db?pool_size=8&connect_timeout=3``); they are converted from text here and
validated by the constructor, exactly like keyword arguments. Every other parameter of a
PostgreSQL URL stays in the URL for the driver (libpq's ``sslmode``, ``sslrootcert``,
``application_name``, ``options``...), which refuses the ones it does not know. A SQLite or
memory URL has no other parameters: an unknown one is a ``ValueError``, never part of a file
name.

Messages never quote a whole URL: a PostgreSQL URL or connection string may hold a password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from factstr._factstr import EventStore, MemoryStore, PostgresStore, SqliteStore

StoreT = TypeVar("StoreT")


def _text(name: str, value: str) -> str:
    return value


def _seconds(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"URL parameter {name} must be a number of seconds, got {value!r}"
        ) from None


def _count(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"URL parameter {name} must be an int, got {value!r}") from None


#: The keyword options each store takes from URL parameters, with their conversion from text.
#: Keep in step with the constructors' keyword arguments.
_OPTIONS: Mapping[str, Mapping[str, Callable[[str, str], Any]]] = {
    "sqlite": {"synchronous": _text, "poll_interval": _seconds, "busy_timeout": _seconds},
    "postgres": {
        "pool_size": _count,
        "connect_timeout": _seconds,
        "reconnect_timeout": _seconds,
        "statement_timeout": _seconds,
    },
}


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL: which store, where, and the keyword options for its constructor."""

    kind: Literal["memory", "sqlite", "postgres"]
    #: The SQLite path, or the PostgreSQL URL without the store's options ("" for memory).
    target: str
    options: dict[str, Any] = field(default_factory=dict)


def _take_options(kind: str, query: str) -> tuple[dict[str, Any], list[str]]:
    """The store's options among the parameters of ``query``, and the other parameters as they
    were written (percent-encoding kept)."""
    known = _OPTIONS[kind]
    options: dict[str, Any] = {}
    others: list[str] = []
    for pair in query.split("&"):
        if not pair:
            continue
        raw_key, separator, raw_value = pair.partition("=")
        key = unquote(raw_key)
        if key not in known:
            others.append(pair)
            continue
        if not separator:
            raise ValueError(f"URL parameter {key} has no value (write {key}=...)")
        if key in options:
            raise ValueError(f"URL parameter {key} is given twice")
        options[key] = known[key](key, unquote(raw_value))
    return options, others


def parse_url(url: str) -> StoreUrl:
    """Splits a store URL into the store kind, its location and its options (see the module
    docstring); raises ``TypeError``/``ValueError`` for anything else."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme or not scheme.replace("+", "").isalnum():
        # Not quoted: a PostgreSQL key=value connection string may hold a password.
        raise ValueError(
            "not a store URL: use memory://, sqlite:///relative.db, sqlite:////absolute/path.db "
            "or postgresql://... (a key=value connection string is not supported)"
        )
    if scheme == "memory":
        if rest:
            raise ValueError("memory:// takes no path and no parameters")
        return StoreUrl("memory", "")
    if scheme == "sqlite":
        location, _, query = rest.partition("?")
        if not location.startswith("/") or len(location) < 2:
            raise ValueError(
                f"a SQLite URL is sqlite:///relative.db or sqlite:////absolute/path.db, got {url!r}"
            )
        options, others = _take_options("sqlite", query)
        if others:
            unknown = ", ".join(repr(unquote(p.partition("=")[0])) for p in others)
            raise ValueError(
                f"unknown parameter {unknown} in a SQLite URL (its parameters are "
                f"{', '.join(_OPTIONS['sqlite'])})"
            )
        return StoreUrl("sqlite", location[1:], options)
    if scheme in ("postgresql", "postgres"):
        base, has_query, query = url.partition("?")
        if "@" in query:
            # Maybe a password with an unencoded "?": the store refuses such a URL without
            # quoting it, so no part of it is taken (or shown) here.
            return StoreUrl("postgres", url)
        options, others = _take_options("postgres", query)
        target = f"{base}?{'&'.join(others)}" if has_query and others else base
        return StoreUrl("postgres", target, options)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}; use memory://, sqlite:///, postgresql:// or postgres://"
    )


def connect(url: str) -> EventStore:
    """Open the store a URL names.

    - ``memory://``: a new, empty Memory store;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention: three slashes, then the path);
    - ``postgresql://...`` or ``postgres://...``: a PostgreSQL database (libpq URL syntax,
      including ``sslmode`` and ``sslrootcert``).

    Query parameters that name a keyword option of the store are that option:
    ``sqlite:///app.db?synchronous=normal&busy_timeout=2``,
    ``postgresql://host/db?pool_size=8&connect_timeout=3``. An unknown parameter raises
    ``ValueError``.
    """
    return open_url(url, MemoryStore, SqliteStore, PostgresStore)


def open_url(
    url: str,
    memory: Callable[[], StoreT],
    sqlite: Callable[..., StoreT],
    postgres: Callable[..., StoreT],
) -> StoreT:
    """The store ``url`` names, made by the matching one of the three constructors (the sync
    ones for ``connect``, ``factstr.aio``'s for ``aio.connect``) with the URL's options."""
    parsed = parse_url(url)
    if parsed.kind == "memory":
        return memory()
    if parsed.kind == "sqlite":
        return sqlite(parsed.target, **parsed.options)
    return postgres(parsed.target, **parsed.options)
