"""The network fails under a store: every wait is bounded, and an append whose connection broke
after its commit was sent says that its outcome is unknown (SPEC §2.7, §7).

Real faults, no mocks: a local socket that accepts and never answers, a backend process stopped
with SIGSTOP (its kernel still acknowledges TCP, so only a client-side deadline can tell), and a
TCP proxy in the test that cuts the connection at a chosen point of the protocol.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.support import run_in_thread, wait_for

#: How long a bounded call may take at most before the test calls it a hang (the bounds used
#: below are 1-2 s; the rest is slack for a loaded machine).
HANG = 30.0


# -- a server that accepts and never answers --------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    # Closing them also ends a connect attempt that was never bounded (before the fix).
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("query", ["", "?sslmode=disable"], ids=["tls-handshake", "startup"])
def test_connect_timeout_bounds_a_server_that_accepts_and_never_answers(
    silent_port: int, query: str
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/postgres{query}"
    thread, errors, results = run_in_thread(lambda: factstr.PostgresStore(url, connect_timeout=1))
    thread.join(HANG)
    assert not thread.is_alive(), "PostgresStore(...) still waits on a server that never answers"
    assert not results
    assert len(errors) == 1 and isinstance(errors[0], factstr.BackendError), errors
    assert "connect_timeout" in str(errors[0])


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf")])
def test_statement_timeout_must_be_a_positive_number_of_seconds(value: float) -> None:
    with pytest.raises(ValueError, match="statement_timeout"):
        factstr.PostgresStore("postgresql://postgres@127.0.0.1:1/postgres", statement_timeout=value)


def test_bootstrap_connect_timeout_bounds_a_silent_server(silent_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/postgres"
    thread, errors, _ = run_in_thread(
        lambda: factstr.PostgresStore.bootstrap(url, "never", connect_timeout=1)
    )
    thread.join(HANG)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], factstr.BackendError), errors


# -- a backend that stops answering -------------------------------------------------------------


def _backend_pids(server: PostgresServer, application_name: str) -> list[int]:
    found = server.sql(
        f"SELECT pid FROM pg_stat_activity WHERE application_name = '{application_name}'"
    )
    return [int(line) for line in found.split()]


@pytest.fixture
def local_server(server: PostgresServer) -> PostgresServer:
    """The session's server when its backends are processes of this machine that we may signal."""
    if not server.restartable:
        pytest.skip("the backends of an external server cannot be stopped by the tests")
    return server


def test_an_append_to_a_stopped_backend_raises_within_the_statement_timeout(
    local_server: PostgresServer, make_database: MakeDatabase
) -> None:
    name = f"factstr_stop_{uuid.uuid4().hex[:12]}"
    url = local_server.url_for(make_database(), query=f"application_name={name}")
    with factstr.PostgresStore(url, pool_size=1, statement_timeout=1) as store:
        store.append([NewEvent("Before", {"n": 1})])
        [pid] = _backend_pids(local_server, name)
        os.kill(pid, signal.SIGSTOP)
        try:
            thread, errors, results = run_in_thread(
                lambda: store.append([NewEvent("During", {"n": 2})])
            )
            thread.join(HANG)
            assert not thread.is_alive(), "an append waits forever on a stopped backend"
            assert not results
            # The request reached the backend's socket: whether it commits when the backend goes
            # on is unknown to the client.
            assert len(errors) == 1 and isinstance(errors[0], factstr.CommitOutcomeUnknown), errors
            assert "statement_timeout" in str(errors[0])
            # A read on it fails in bounded time too, and is no commit.
            query_thread, query_errors, _ = run_in_thread(store.query)
            query_thread.join(HANG)
            assert not query_thread.is_alive()
            assert not query_errors, "the timed-out connection must not be reused"
        finally:
            os.kill(pid, signal.SIGCONT)
        # The store recovers on a new connection. The resumed backend may still commit the
        # abandoned batch, before or after this one: either way, no gap and no duplicate.
        after = store.append([NewEvent("After", {"n": 3})])
        numbers = [r.sequence_number for r in store.query().event_records]
        assert numbers == list(range(1, len(numbers) + 1))
        assert after.first_sequence_number in numbers and len(numbers) in (2, 3)


def test_a_read_on_a_stopped_backend_raises_a_plain_backend_error(
    local_server: PostgresServer, make_database: MakeDatabase
) -> None:
    name = f"factstr_stop_{uuid.uuid4().hex[:12]}"
    url = local_server.url_for(make_database(), query=f"application_name={name}")
    with factstr.PostgresStore(url, pool_size=1, statement_timeout=1) as store:
        store.append([NewEvent("Before", {"n": 1})])
        [pid] = _backend_pids(local_server, name)
        os.kill(pid, signal.SIGSTOP)
        try:
            thread, errors, _ = run_in_thread(store.query)
            thread.join(HANG)
            assert not thread.is_alive(), "a query waits forever on a stopped backend"
            assert len(errors) == 1 and isinstance(errors[0], factstr.BackendError), errors
            assert not isinstance(errors[0], factstr.CommitOutcomeUnknown)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert len(store.query().event_records) == 1


# -- a connection cut at a chosen point of the protocol -----------------------------------------


class CuttingProxy:
    """Forwards TCP between the store and the server, and on request cuts the connection:

    - ``cut_before(marker)``: the next client message holding ``marker`` is not forwarded, the
      connection is closed instead (nothing of it reached the server);
    - ``cut_after(marker)``: the next client message holding ``marker`` is forwarded, and the
      connection is closed when the server's answer arrives, which is not forwarded (the server
      did the work, the client never hears of it).

    An empty marker matches any client message. Use ``sslmode=disable`` to let it see them.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.plan: tuple[str, bytes] | None = None
        self.cuts = 0
        #: Connections that ended, by a cut or by either side closing.
        self.ended = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def cut_before(self, marker: bytes) -> None:
        with self.lock:
            self.plan = ("before", marker)

    def cut_after(self, marker: bytes) -> None:
        with self.lock:
            self.plan = ("after", marker)

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        awaiting_answer = False
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        with self.lock:
                            plan = self.plan
                            if plan is not None and plan[1] in data:
                                self.plan = None
                                if plan[0] == "before":
                                    self.cuts += 1
                                    return
                                awaiting_answer = True
                        upstream.sendall(data)
                    else:
                        if awaiting_answer:
                            with self.lock:
                                self.cuts += 1
                            return
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
            with self.lock:
                self.ended += 1

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


@pytest.fixture
def proxied(
    server: PostgresServer, make_database: MakeDatabase
) -> Iterator[tuple[CuttingProxy, Callable[[], str], str]]:
    """A proxy to the server, and the URLs of one new database: through the proxy, and direct."""
    proxy = CuttingProxy(server.port)
    database = make_database()

    def through() -> str:
        return f"postgresql://{server.user}@127.0.0.1:{proxy.port}/{database}?sslmode=disable"

    yield proxy, through, server.url_for(database)
    proxy.close()


def _count(url: str) -> int:
    with factstr.PostgresStore(url, pool_size=1) as fresh:
        return len(fresh.query().event_records)


def test_a_plain_append_cut_after_its_commit_was_sent_raises_commit_outcome_unknown(
    proxied: tuple[CuttingProxy, Callable[[], str], str],
) -> None:
    proxy, through, direct = proxied
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {"n": 0})])  # the append statement is prepared now
        # The append's one round trip inserts and commits; the answer never comes back.
        proxy.cut_after(b"")
        with pytest.raises(factstr.CommitOutcomeUnknown) as raised:
            store.append([NewEvent("Cut", {"n": 1}), NewEvent("Cut", {"n": 2})])
        assert isinstance(raised.value, factstr.BackendError)
        assert proxy.cuts == 1
        # It was in fact committed, as a fresh store sees.
        assert _count(direct) == 3
        # And the store goes on, on a new connection.
        assert store.append([NewEvent("Next", {"n": 3})]).first_sequence_number == 4


def test_a_conditional_append_cut_after_its_commit_was_sent_raises_commit_outcome_unknown(
    proxied: tuple[CuttingProxy, Callable[[], str], str],
) -> None:
    proxy, through, direct = proxied
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {"n": 0})])
        proxy.cut_after(b"; COMMIT")  # the statement, not `BEGIN ... READ COMMITTED`
        with pytest.raises(factstr.CommitOutcomeUnknown):
            store.append_if([NewEvent("Cut", {"n": 1})], EventQuery.for_event_types(["Cut"]), None)
        assert proxy.cuts == 1
        assert _count(direct) == 2


def test_append_unless_cut_after_its_commit_was_sent_raises_commit_outcome_unknown(
    proxied: tuple[CuttingProxy, Callable[[], str], str],
) -> None:
    """``append_unless`` sends lock, check, insert and commit in one round trip (SPEC §2.7)."""
    proxy, through, direct = proxied
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {"n": 0})])
        proxy.cut_after(b"; COMMIT")  # the statement, not `BEGIN ... READ COMMITTED`
        with pytest.raises(factstr.CommitOutcomeUnknown):
            store.append_unless([NewEvent("Cut", {"n": 1})], EventQuery.for_event_types(["Cut"]), 1)
        assert proxy.cuts == 1
        assert _count(direct) == 2
        assert (
            store.append_unless(
                [NewEvent("Next", {"n": 2})], EventQuery.for_event_types(["Next"])
            ).first_sequence_number
            == 3
        )


def test_a_conditional_append_cut_before_its_commit_raises_a_plain_backend_error(
    proxied: tuple[CuttingProxy, Callable[[], str], str],
) -> None:
    proxy, through, direct = proxied
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {"n": 0})])
        # Its first round trip (begin, lock, read the head) never reaches the server.
        proxy.cut_before(b"LOCK TABLE")
        with pytest.raises(factstr.BackendError) as raised:
            store.append_if([NewEvent("Cut", {"n": 1})], EventQuery.for_event_types(["Cut"]), None)
        assert not isinstance(raised.value, factstr.CommitOutcomeUnknown)
        assert proxy.cuts == 1
        assert _count(direct) == 1
        assert store.append([NewEvent("Next", {"n": 2})]).first_sequence_number == 2


def test_a_pooled_connection_the_server_ended_is_replaced_before_an_append(
    server: PostgresServer,
    proxied: tuple[CuttingProxy, Callable[[], str], str],
) -> None:
    proxy, through, direct = proxied
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {"n": 0})])
        # The connection idles in the pool while the server ends its session (as at a restart).
        database = direct.rsplit("/", 1)[1]
        server.sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        )
        # The server's goodbye and end of stream have reached the store's socket.
        wait_for(lambda: proxy.ended == 1, timeout=HANG)
        # Nothing is sent on the dead connection: the append goes to a new one and succeeds.
        assert store.append([NewEvent("Next", {"n": 1})]).first_sequence_number == 2
        assert proxy.cuts == 0
        assert _count(direct) == 2
