"""Counting round trips to PostgreSQL: a TCP proxy in front of the server that counts the
client's turns to speak, one per round trip (a client that sends several messages before reading
the answers speaks once). Used by the tests that pin how many round trips a call takes and by
``bench/pg_s3.py --round-trips``."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


class TurnCounter:
    """Forwards each connection to the server on ``port``; counts the client's turns."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.turns = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        client_spoke_last = False
        with client, server:
            while not self.stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if not client_spoke_last:
                            self.turns += 1
                        client_spoke_last = True
                        server.sendall(data)
                    else:
                        client_spoke_last = False
                        client.sendall(data)

    def count(self, work: Callable[[], T]) -> tuple[int, T]:
        """The round trips `work` takes (the proxy settles before and after), and its result."""
        time.sleep(0.05)
        before = self.turns
        result = work()
        time.sleep(0.05)
        return self.turns - before, result


@contextmanager
def counted(url: str) -> Iterator[tuple[TurnCounter, str]]:
    """A proxy to the server of `url`, and the URL through it (no TLS: the proxy reads nothing,
    but counts plain turns the same)."""
    parts = urlsplit(url)
    proxy = TurnCounter(parts.port or 5432)
    try:
        yield proxy, urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    finally:
        proxy.stop.set()
