"""SPEC §7: after ``os.fork()`` a SQLite or PostgreSQL store inherited by the child raises
``StoreClosedError`` there (the child opens its own); the parent's store is unaffected, also
when the child closes or drops the inherited store.

Before this rule the child used the parent's connections: on PostgreSQL both processes spoke on
one socket (TLS "cannot decrypt peer's message", "prepared statement already exists"), and
SQLite carried the parent's lock state into the child.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Callable

import factstr
import pytest
from factstr import StoreClosedError

from tests.support import DEADLINE, Collector, Store, StoreFactory, ev, seqs_of

pytestmark = pytest.mark.usefixtures("shared_backend")


def _in_child(work: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Runs ``work`` in a forked child and returns what it reported (its exceptions included)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any cleanup of the parent's
        os.close(read_end)
        try:
            report = work()
        except BaseException as error:
            report = {"error": f"{type(error).__name__}: {error}"}
        with os.fdopen(write_end, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child did not finish")
        time.sleep(0.01)
    with os.fdopen(read_end) as reports:
        text = reports.read()
    assert os.waitstatus_to_exitcode(status) == 0, text
    result: dict[str, object] = json.loads(text)
    return result


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except StoreClosedError:
        return "StoreClosedError"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "worked"


def _busy_parent_use(store: Store) -> None:
    """Every pooled connection of the parent's store answers (queries from several threads)."""
    errors: list[BaseException] = []

    def queries() -> None:
        try:
            for _ in range(5):
                store.query(limit=1)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=queries) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 4)
    assert not errors, errors


def test_inherited_store_is_closed_in_the_child_and_the_parent_goes_on(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    seen = Collector()
    store.stream_all(seen)
    store.append([ev("before-fork")])  # 1
    seen.wait_records(1)
    subscription = store.subscribe()

    def child() -> dict[str, object]:
        report: dict[str, object] = {
            "query": _outcome(lambda: store.query()),
            "append": _outcome(lambda: store.append([ev("from-inherited")])),
            "stream_all": _outcome(lambda: store.stream_all(lambda batch: None)),
            "subscribe": _outcome(lambda: store.subscribe()),
            "next_batch": _outcome(lambda: subscription.next_batch(timeout=0.1)),
            "closed": store.closed,
        }
        own = make_store()  # the child's own store on the same file or database
        own.append([ev("from-child")])
        report["child sees"] = seqs_of(own.query().event_records)
        own.close()
        report["close inherited"] = _outcome(store.close)
        return report

    report = _in_child(child)
    assert report == {
        "query": "StoreClosedError",
        "append": "StoreClosedError",
        "stream_all": "StoreClosedError",
        "subscribe": "StoreClosedError",
        "next_batch": "StoreClosedError",
        "closed": True,
        "child sees": [1, 2],
        "close inherited": "worked",
    }
    assert not store.closed
    _busy_parent_use(store)
    store.append([ev("parent-after")])  # 3
    assert [r.event_type for r in store.query().event_records] == [
        "before-fork",
        "from-child",
        "parent-after",
    ]
    seen.wait_records(3)
    assert seen.seqs == [1, 2, 3]
    batch = subscription.next_batch(timeout=DEADLINE)
    assert batch is not None and seqs_of(batch) == [2]
    subscription.close()


def test_child_dropping_the_inherited_store_leaves_the_parent_working(
    make_store: StoreFactory, open_code: str
) -> None:
    # A store object that nothing else holds, so that the child's drop really frees it there.
    holder = [eval(open_code, {"factstr": factstr})]
    holder[0].append([ev("before-fork")])

    def child() -> dict[str, object]:
        holder.clear()
        gc.collect()
        return {"dropped": True}

    assert _in_child(child) == {"dropped": True}
    store = holder[0]
    _busy_parent_use(store)
    store.append([ev("after")])
    assert seqs_of(store.query().event_records) == [1, 2]
    store.close()
