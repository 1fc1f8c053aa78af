"""The loop of a handler registration's thread, and what happens to those threads at exit.

The loop is Python on purpose: a handler then never runs below a Rust frame, so a handler that
is still busy when the interpreter finalises ends like any daemon thread (CPython stops it with
``pthread_exit``, which must not unwind through Rust). See ``rust/factstr-python/src/exit.rs``.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from factstr import _factstr

#: At interpreter exit, how long (seconds) busy handlers may take to finish their batch before
#: the interpreter goes on finalising without them.
EXIT_GRACE = 1.0

_logger = logging.getLogger("factstr")


def deliver(worker: Any) -> None:
    """Runs one registration: hands each batch to its handler until the registration ends."""
    while True:
        try:
            batch = worker.next_batch()
        except Exception as error:  # the store stayed unreachable past its reconnect window
            _logger.warning(
                "stream %d stopped: reading the next batch failed", worker.id, exc_info=error
            )
            worker.fail(error)
            return
        if batch is None:
            return
        try:
            worker.handler(batch)
        except BaseException as error:
            if worker.durable_name is None:
                # SPEC §5: reported with its traceback; the live stream goes on.
                _logger.warning(
                    "handler of stream %d raised; the stream goes on", worker.id, exc_info=error
                )
                continue
            # SPEC §6: a durable stream stops at the failed batch; its cursor stays before it.
            _logger.warning(
                "durable stream %r (stream %d) stopped: its handler raised",
                worker.durable_name,
                worker.id,
                exc_info=error,
            )
            worker.fail(error)
            return
        try:
            worker.handled()
        except Exception as error:  # the cursor could not be saved
            _logger.warning(
                "durable stream %r (stream %d) stopped: saving its cursor failed",
                worker.durable_name,
                worker.id,
                exc_info=error,
            )
            worker.fail(error)
            return


def _at_exit() -> None:
    _factstr._exit_streams(EXIT_GRACE)


# Registered when factstr is imported, so it runs after the application's own atexit hooks
# (which may still close stores) and before the interpreter finalises.
atexit.register(_at_exit)
# Windows has no fork (and no os.register_at_fork).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_factstr._before_fork,
        after_in_parent=_factstr._after_fork_in_parent,
        after_in_child=_factstr._after_fork_in_child,
    )
