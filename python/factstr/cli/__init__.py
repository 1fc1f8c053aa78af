"""The ``factstr`` command (SPEC §14): ``factstr`` (console script) or ``python -m factstr``.

- ``arguments``: the grammar and help (``argparse``);
- ``commands``: one function per command;
- ``output``: tables, colour, JSON lines, password masking;
- ``transfer``: export, import and copy (the export format is documented there);
- ``progress``: progress on stderr.

Errors are one line on stderr, never a traceback: exit status 2 for usage (bad arguments, a bad
URL, an unreadable input file), 1 for everything the store or the data refuses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from factstr import FactstrError
from factstr.cli.output import mask


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"factstr: error: {mask(message)}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status."""
    from factstr.cli import arguments, commands, transfer

    args = arguments.build().parse_args(argv)
    try:
        status: int = args.run(args)
        sys.stdout.flush()
        return status
    except commands.UsageError as error:
        return _fail(str(error), 2)
    except (FactstrError, transfer.TransferError, ValueError, TypeError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return _quiet_broken_pipe()
        return _fail(f"{type(error).__name__}: {error}" if _named(error) else str(error), 1)
    except KeyboardInterrupt:
        sys.stderr.write("factstr: interrupted\n")
        return 130


def _named(error: BaseException) -> bool:
    """Whether the error's class says more than its message (a store error's kind does)."""
    return isinstance(error, FactstrError)


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``factstr query ... | head``): stop quietly. Python would
    complain again when it flushes stdout at exit, so stdout is pointed at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
