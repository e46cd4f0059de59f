"""sock_diag's two ways to a connection: the kernel's lookup by its addresses and ports, and the dump.

The lookup must find what the dump finds, in every state a run asks about
here (a listener, both ends of a connection, TIME_WAIT), must never pass off
another socket as the one asked for, and its "not found" is final.
"""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from lab.live.observer import Observer
from netns import LoopbackTopology, inside
from netns.sockets import SockDiag

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
PORT = 8080


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["IPv4", "IPv6"])
def connection(request):
    """(family, observer, listener, client, server) in a namespace of their own (observer.ns names it)."""
    family = request.param
    address = LOOPBACK[family]
    with LoopbackTopology() as topo:
        with inside(topo.kernel_ns):
            listener = socket.create_server((address, PORT), family=family)
            client = socket.create_connection((address, PORT), timeout=2)
        server = listener.accept()[0]
        observer = Observer(topo.kernel_ns)
        try:
            yield family, observer, listener, client, server
        finally:
            observer.close()
            for sock in (client, server, listener):
                sock.close()


def _same_socket(looked_up, observer: Observer, family: int, local_port: int, remote_port: int) -> bool:
    """Whether the dump reports the looked-up socket (its timer's time left moves on between the two)."""
    dumped = observer.connection(family, local_port, remote_port)
    return dumped is not None and dataclasses.replace(dumped, expires_ms=looked_up.expires_ms) == looked_up


def test_the_lookup_finds_what_the_dump_finds(connection):
    family, observer, listener, client, server = connection
    address = LOOPBACK[family]
    client_port = client.getsockname()[1]
    for local_port, remote_port, remote, state in ((PORT, 0, None, "LISTEN"),
                                                   (PORT, client_port, address, "ESTABLISHED"),
                                                   (client_port, PORT, address, "ESTABLISHED")):
        looked_up = observer.connection(family, local_port, remote_port, (address, remote))
        assert looked_up is not None and looked_up.state == state, (local_port, remote_port, looked_up)
        assert _same_socket(looked_up, observer, family, local_port, remote_port)


def test_the_kernel_answers_the_lookup_itself(connection):
    """The fast path is taken: the kernel's answer to the lookup is the socket, not "no such socket"."""
    family, observer, listener, client, server = connection
    address = LOOPBACK[family]
    client_port = client.getsockname()[1]
    with inside(observer.ns):
        diag = SockDiag()
    with diag:
        assert diag.lookup(family, (address, PORT), (address, client_port)) is not None
        assert diag.lookup(family, (address, client_port + 1), (address, PORT)) is None


def test_a_time_wait_socket_is_looked_up(connection):
    family, observer, listener, client, server = connection
    address = LOOPBACK[family]
    client_port = client.getsockname()[1]
    client.close()  # the client closes first: it ends in TIME_WAIT once the server's FIN is acknowledged
    server.close()
    found = None
    for _ in range(100):
        found = observer.connection(family, client_port, PORT, (address, address))
        if found is not None and found.state == "TIME_WAIT":
            break
        time.sleep(0.01)
    assert found is not None and found.state == "TIME_WAIT", found
    assert _same_socket(found, observer, family, client_port, PORT)


def test_another_connections_port_is_not_passed_off_as_this_one(connection):
    """The kernel's lookup of a connection the listening port does not have answers with the listener, as it
    would for a SYN: that must read as CLOSED, never as LISTEN."""
    family, observer, listener, client, server = connection
    address = LOOPBACK[family]
    client_port = client.getsockname()[1]
    assert observer.connection(family, PORT, client_port + 1, (address, address)) is None
    assert observer.connection(family, PORT + 1, 0, (address, None)) is None


def test_a_lookup_that_finds_nothing_is_the_answer(connection):
    """The lookup names the connection by its four addresses and ports: on other addresses it finds nothing
    and says CLOSED at once, with no dump of the shared table behind it; only a caller without addresses
    gets the dump, which finds the socket by its ports."""
    family, observer, listener, client, server = connection
    wrong = {socket.AF_INET: "127.0.0.2", socket.AF_INET6: "2001:db8::9"}[family]
    client_port = client.getsockname()[1]
    assert observer.connection(family, PORT, client_port, (wrong, wrong)) is None
    found = observer.connection(family, PORT, client_port)
    assert found is not None and found.state == "ESTABLISHED"
