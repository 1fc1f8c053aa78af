"""The command line's grammar (standard library ``argparse``: no dependency), with an example in
every command's help. Usage errors are one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from factstr.cli import commands
from factstr.cli.output import mask

URLS = """store URLs (query parameters are the store's options, SPEC §11):
  memory://                                   a new, empty store in this process
  sqlite:///relative.db  sqlite:////abs/path.db?synchronous=normal&busy_timeout=2
  postgresql://user:password@host/db?pool_size=4&connect_timeout=3&sslmode=require"""


class Parser(argparse.ArgumentParser):
    """``argparse`` with one-line errors (exit status 2) and URLs masked in them."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {mask(message)} (see {self.prog} --help)\n")
        sys.exit(2)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _command(
    commands_: argparse._SubParsersAction[Parser],
    name: str,
    summary: str,
    example: str,
) -> Parser:
    return commands_.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}\n\n{URLS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _json_flag(parser: Parser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="JSON lines on stdout instead of a table"
    )


def _filters(parser: Parser) -> None:
    parser.add_argument(
        "--type",
        action="append",
        metavar="T",
        help="event type; repeat for alternatives (any of them)",
    )
    parser.add_argument(
        "--where",
        action="append",
        metavar="JSON",
        help="payload predicate (the payload contains it); repeat for alternatives",
    )


def build() -> Parser:
    parser = Parser(
        prog="factstr",
        description="Look into a factstr store, follow it, move it between stores.",
        epilog=(
            "examples:\n"
            "  factstr info sqlite:///app.db\n"
            "  factstr tail sqlite:///app.db --follow\n"
            "  factstr copy sqlite:///app.db postgresql://me@db.example/app\n\n" + URLS
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from factstr import __version__

    parser.add_argument("--version", action="version", version=f"factstr {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )

    p = _command(
        sub,
        "info",
        "Store kind, facts, head, batches, size, durable streams with cursor and lag.",
        "factstr info sqlite:///app.db",
    )
    p.add_argument("url", metavar="URL")
    _json_flag(p)
    p.set_defaults(run=commands.info)

    p = _command(
        sub,
        "query",
        "Print the facts that match (all of them without filters).",
        'factstr query sqlite:///app.db --type OrderPlaced --where \'{"customer": "c-7"}\' --limit 20',
    )
    p.add_argument("url", metavar="URL")
    _filters(p)
    p.add_argument("--after", type=_count, metavar="N", help="only facts after sequence number N")
    p.add_argument("--limit", type=_count, metavar="N", help="at most N facts")
    _json_flag(p)
    p.set_defaults(run=commands.query)

    p = _command(
        sub,
        "tail",
        "The last facts; with --follow, then every batch as it commits (any process), until Ctrl-C.",
        "factstr tail postgresql://me@db.example/app --type OrderPlaced --follow",
    )
    p.add_argument("url", metavar="URL")
    _filters(p)
    p.add_argument(
        "-n", "--lines", type=_count, default=10, metavar="N", help="facts shown first (10)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="then show batches as they commit")
    _json_flag(p)
    p.set_defaults(run=commands.tail)

    p = _command(
        sub,
        "append",
        'Append JSON lines {"event_type": ..., "payload": ...} as one batch (or --batch-size N).',
        'echo \'{"event_type": "Noted", "payload": {"text": "hi"}}\' | factstr append sqlite:///app.db',
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("--file", metavar="F", help="read from F instead of stdin")
    p.add_argument(
        "--batch-size", type=_positive, metavar="N", help="commit every N events as a batch"
    )
    _json_flag(p)
    p.set_defaults(run=commands.append)

    p = _command(
        sub,
        "export",
        "Write every fact (numbers, times, batches) and the durable cursors as JSON lines.",
        "factstr export sqlite:///app.db --file app.factstr.jsonl",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("--file", metavar="F", help="write to F (atomically) instead of stdout")
    p.set_defaults(run=commands.export)

    p = _command(
        sub,
        "import",
        "Read an export into an empty store: the same facts, numbers, batches, times, cursors.",
        "factstr export sqlite:///old.db | factstr import postgresql://me@db.example/app",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("--file", metavar="F", help="read from F instead of stdin")
    p.set_defaults(run=commands.import_)

    p = _command(
        sub,
        "copy",
        "Export piped into import, verified by counts and a checksum at the end.",
        "factstr copy sqlite:///app.db postgresql://me@db.example/app",
    )
    p.add_argument("source", metavar="SOURCE_URL")
    p.add_argument("target", metavar="TARGET_URL")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted copy (checks the target's facts against the source first)",
    )
    _json_flag(p)
    p.set_defaults(run=commands.copy)

    durable = _command(
        sub,
        "durable",
        "Durable stream cursors: list, reset, delete (refused while a stream is active).",
        "factstr durable reset sqlite:///app.db projections --to 0",
    )
    actions = durable.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = _command(
        actions, "list", "Names, queries, cursors and lag.", "factstr durable list sqlite:///app.db"
    )
    p.add_argument("url", metavar="URL")
    _json_flag(p)
    p.set_defaults(run=commands.durable_list)
    p = _command(
        actions,
        "reset",
        "Set a cursor (default 0: replay everything).",
        "factstr durable reset sqlite:///app.db projections --to 1200",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", type=_count, default=0, metavar="N", help="the new cursor (0)")
    p.set_defaults(run=commands.durable_reset)
    p = _command(
        actions,
        "delete",
        "Delete a durable stream's cursor.",
        "factstr durable delete sqlite:///app.db old-projection",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(run=commands.durable_delete)
    return parser
