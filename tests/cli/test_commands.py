"""Every command of ``factstr`` (SPEC §14) through a real process, on SQLite and PostgreSQL:
help with examples, one-line errors and exit statuses, append/query/tail/info, durable cursor
management, and ``tail --follow`` across processes, ended by SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.cli.conftest import Cli, cli_env
from tests.postgres_server import PostgresServer

COMMANDS = [
    ["info"],
    ["query"],
    ["tail"],
    ["append"],
    ["export"],
    ["import"],
    ["copy"],
    ["durable"],
    ["durable", "list"],
    ["durable", "reset"],
    ["durable", "delete"],
]


def lines(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode()
    assert "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1, text
    assert done.stdout == b""
    return text


def test_help_shows_an_example_for_every_command(cli: Cli) -> None:
    done = cli("--help")
    assert done.returncode == 0
    assert b"examples:" in done.stdout and b"factstr copy sqlite:///" in done.stdout
    for command in COMMANDS:
        done = cli(*command, "--help")
        assert done.returncode == 0, command
        example = done.stdout.split(b"example:\n  ", 1)[-1].split(b"\n", 1)[0]
        assert b"factstr " in example, (command, done.stdout)


def test_the_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "factstr")
    done = subprocess.run([script, "--version"], capture_output=True, check=False, env=cli_env())
    assert done.returncode == 0
    assert done.stdout.decode().startswith("factstr ")


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate", "sqlite:///x.db"],
        ["query"],
        ["query", "sqlite:///x.db", "--limit", "-1"],
        ["query", "memory://", "--where", "{not json"],
        ["info", "sqlite:///x.db?cache=big"],
        ["info", "mysql://h/db"],
        ["append", "memory://", "--file", "/no/such/file.jsonl"],
    ],
)
def test_usage_errors_are_one_line_with_status_2(cli: Cli, args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    one_line_error(done)


def test_store_errors_are_one_line_with_status_1_and_no_password(cli: Cli) -> None:
    url = "postgresql://alice:s3cret-pw@127.0.0.1:1/db?connect_timeout=1"
    for args in (["info", url], ["copy", "memory://", url]):
        done = cli(*args)
        assert done.returncode == 1, done.stderr
        text = one_line_error(done)
        assert "s3cret" not in text
        assert "BackendError" in text


def test_a_missing_sqlite_folder_is_a_store_error(cli: Cli) -> None:
    done = cli("info", "sqlite:////no/such/folder/app.db")
    assert done.returncode == 1
    assert "does not exist" in one_line_error(done)


def test_append_query_tail_and_info(cli: Cli, make_url: Callable[[], str]) -> None:
    url = make_url()
    events = [
        {"event_type": "OrderPlaced", "payload": {"customer": "c-1", "total": 10}},
        {"event_type": "OrderPlaced", "payload": {"customer": "c-2", "total": 2.5}},
        {"event_type": "OrderShipped", "payload": {"customer": "c-1"}},
    ]
    stdin = "".join(json.dumps(e) + "\n" for e in events).encode()
    done = cli("append", url, "--json", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [
        {"first_sequence_number": 1, "last_sequence_number": 3, "committed_count": 3, "batches": 1}
    ]
    done = cli("append", url, "--batch-size", "1", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert b"appended 3 facts in 3 batch(es): 4..6" in done.stdout

    done = cli("query", url, "--json")
    facts = lines(done.stdout)
    assert [f["sequence_number"] for f in facts] == [1, 2, 3, 4, 5, 6]
    assert set(facts[0]) == {"sequence_number", "occurred_at", "event_type", "payload"}
    assert facts[1]["payload"] == {"customer": "c-2", "total": 2.5}
    assert facts[0]["occurred_at"].endswith("Z")
    assert facts[0]["occurred_at"] == facts[2]["occurred_at"]  # one batch, one time

    # Types are alternatives, predicates are alternatives, and both must hold.
    done = cli(
        "query", url, "--json", "--type", "OrderPlaced", "--type", "OrderShipped",
        "--where", '{"customer": "c-1"}', "--where", '{"total": 2.5}', "--after", "1",
    )  # fmt: skip
    assert [f["sequence_number"] for f in lines(done.stdout)] == [2, 3, 4, 5, 6]
    done = cli("query", url, "--json", "--type", "OrderShipped", "--limit", "1")
    assert [f["sequence_number"] for f in lines(done.stdout)] == [3]

    # A table: a header and aligned columns.
    done = cli("query", url, "--type", "OrderPlaced")
    rows = done.stdout.decode().splitlines()
    assert rows[0].split() == ["SEQ", "OCCURRED_AT", "TYPE", "PAYLOAD"]
    assert len(rows) == 5
    assert len({row.index("OrderPlaced") for row in rows[1:]}) == 1
    assert rows[0].index("TYPE") == rows[1].index("OrderPlaced")
    assert "\x1b[" not in done.stdout.decode()  # no colour in a pipe

    done = cli("tail", url, "-n", "2", "--json")
    assert [f["sequence_number"] for f in lines(done.stdout)] == [5, 6]
    done = cli("tail", url, "--type", "OrderShipped", "--json")
    assert [f["sequence_number"] for f in lines(done.stdout)] == [3, 6]

    done = cli("info", url, "--json")
    assert done.returncode == 0, done.stderr
    [info] = lines(done.stdout)
    assert info["store"] == ("sqlite" if url.startswith("sqlite") else "postgres")
    assert (info["facts"], info["head_sequence_number"], info["batches"]) == (6, 6, 4)
    assert info["durable_streams"] == []
    done = cli("info", url)
    assert b"batches:" in done.stdout and b"4" in done.stdout


def test_durable_list_reset_delete(cli: Cli, make_url: Callable[[], str]) -> None:
    url = make_url()
    with factstr.connect(url) as store:
        store.append([NewEvent("A", {"i": i}) for i in range(3)])
        with store.subscribe(EventQuery.for_event_types(["A"]), durable="projection") as sub:
            assert len(sub.next_batch(timeout=10) or []) == 3
            sub.ack()
        store.append([NewEvent("B", {})])
        done = cli("durable", "list", url, "--json")
        assert done.returncode == 0, done.stderr
        [listed] = lines(done.stdout)
        assert listed["name"] == "projection"
        assert listed["last_processed_sequence_number"] == 3
        assert listed["lag"] == 1
        assert listed["query"]["filters"] == [{"event_types": ["A"], "payload_predicates": None}]
        table = cli("durable", "list", url).stdout.decode().splitlines()
        assert table[0].split() == ["NAME", "CURSOR", "LAG", "QUERY"]
        assert table[1].split() == ["projection", "3", "1", "A"]

        # An active name is refused, with the API's error.
        with store.subscribe(durable="held"):
            for args in (["reset", url, "held"], ["delete", url, "held"]):
                done = cli("durable", *args)
                assert done.returncode == 1
                assert "DurableStreamActive" in one_line_error(done)

        assert cli("durable", "reset", url, "projection", "--to", "1").returncode == 0
        cursors = {s.name: s.last_processed_sequence_number for s in store.durable_streams()}
        assert cursors == {"projection": 1, "held": 0}
        done = cli("durable", "reset", url, "nobody")
        assert done.returncode == 1 and "DurableStreamError" in one_line_error(done)
        assert cli("durable", "delete", url, "projection").returncode == 0
        assert [s.name for s in store.durable_streams()] == ["held"]


def _read_json_lines(process: subprocess.Popen[bytes], count: int) -> list[dict[str, Any]]:
    """``count`` JSON lines from the process's stdout (a timer kills it if they never come)."""
    assert process.stdout is not None
    timer = threading.Timer(60, process.kill)
    timer.start()
    try:
        return [json.loads(process.stdout.readline()) for _ in range(count)]
    finally:
        timer.cancel()


@pytest.mark.parametrize("as_json", [True, False])
def test_tail_follow_shows_other_processes_batches_and_ends_on_sigint(
    make_url: Callable[[], str], as_json: bool
) -> None:
    url = make_url()
    with factstr.connect(url) as store:
        store.append([NewEvent("Old", {"i": i}) for i in range(12)])
        args = [sys.executable, "-m", "factstr", "tail", url, "--follow", "-n", "1"]
        process = subprocess.Popen(
            [*args, *(["--json"] if as_json else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        try:
            assert process.stdout is not None
            if as_json:
                # The last fact first; it is printed once the live stream is registered.
                assert [f["sequence_number"] for f in _read_json_lines(process, 1)] == [12]
            else:
                assert process.stdout.readline().split() == [
                    b"SEQ",
                    b"OCCURRED_AT",
                    b"TYPE",
                    b"PAYLOAD",
                ]
                assert process.stdout.readline().split()[0] == b"12"
            # This test process is another process than the command: cross-process delivery.
            store.append([NewEvent("New", {"i": 1}), NewEvent("New", {"i": 2})])
            store.append([NewEvent("New", {"i": 3})])
            if as_json:
                live = _read_json_lines(process, 3)
                assert [(f["sequence_number"], f["batch"]) for f in live] == [
                    (13, 13),
                    (14, 13),
                    (15, 15),
                ]
                assert live[0]["payload"] == {"i": 1}
            else:
                seen = [process.stdout.readline().decode() for _ in range(5)]
                assert seen[0].strip() == "-- batch 13..14 (2 facts)"
                assert seen[1].split()[0] == "13" and seen[2].split()[0] == "14"
                assert seen[3].strip() == "-- batch 15 (1 facts)"
                assert seen[4].split()[0] == "15"
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=30)
            assert process.returncode == 0, err
            assert b"Traceback" not in err
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_info_shows_the_postgres_size_or_unknown_when_the_role_may_not_read_it(
    cli: Cli, make_pg_url: Callable[[], str], postgres_server: PostgresServer
) -> None:
    """The size is the store's tables with their indexes; a role that may not call
    ``pg_total_relation_size`` (EXECUTE revoked in that database) sees "unknown", not an error."""
    url = make_pg_url()
    with factstr.connect(url) as store:
        store.append([NewEvent("A", {"note": "x" * 1000, "i": i}) for i in range(200)])
    done = cli("info", url, "--json")
    assert done.returncode == 0, done.stderr
    [info] = lines(done.stdout)
    # 200 payloads of about 1 kB, plus every table's and index's pages.
    assert isinstance(info["size_bytes"], int) and info["size_bytes"] > 200_000
    shown = cli("info", url).stdout.decode()
    assert "unknown" not in shown and ("KiB" in shown or "MiB" in shown), shown

    database = url.split("?")[0].rsplit("/", 1)[1]
    role = f"viewer_{uuid.uuid4().hex[:12]}"
    postgres_server.sql(f"CREATE ROLE {role} LOGIN")
    try:
        postgres_server.sql(
            f"GRANT USAGE ON SCHEMA public TO {role}; "
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; "
            "REVOKE EXECUTE ON FUNCTION pg_total_relation_size(regclass) FROM PUBLIC",
            database,
        )
        role_url = url.replace(f"//{postgres_server.user}@", f"//{role}@", 1)
        assert role_url != url
        done = cli("info", role_url, "--json")
        assert done.returncode == 0, done.stderr
        [info] = lines(done.stdout)
        assert info["size_bytes"] is None and info["facts"] == 200
        shown = cli("info", role_url).stdout.decode()
        assert any(line.split() == ["size:", "unknown"] for line in shown.splitlines()), shown
    finally:
        postgres_server.sql(f"DROP OWNED BY {role}", database)
        postgres_server.sql(f"DROP ROLE {role}")
