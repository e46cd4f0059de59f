"""Socket states read from the kernel with sock_diag; and the namespace's TCP counters (/proc/net/snmp).

sock_diag sees every TCP socket of a namespace, also those without a file
descriptor: request sockets in SYN_RECV, orphans in FIN_WAIT_1/2 or LAST_ACK,
and TIME_WAIT minisocks with the time they have left. A connection that
sock_diag no longer lists is CLOSED.

A state line often sits between a kernel segment and the lab's ``+0`` answer,
so a query must cost the timeline nothing it can notice. A dump walks the
kernel's whole established table, which every namespace shares and whose
size follows the host's memory, to find a handful of sockets; that walk can
make the next ``+0`` line late. So a connection whose addresses the run
knows (it always does: they are its own address plan) is looked up as the
kernel looks up an arriving segment's socket, at a cost that does not grow
with the table. The lookup searches the established table, which holds
request socks (SYN_RECV) and TIME_WAIT minisocks too, so its "no such
socket" is the answer: CLOSED, with no dump behind it. Only a caller that
does not know the addresses (``addresses=None``: tests, experiments, outside
any timeline) gets the dump. The costs are measured by
``python -m bench.observations`` (docs/timing-evidence.md).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from lab.tcp.states import CLOSED, STATES, TIMERS
from netns import inside
from netns.netlink import HEADER
from netns.sockets import INET_DIAG_MSG, SockDiag


@dataclass(frozen=True)
class SocketInfo:
    """One TCP socket as sock_diag reports it."""

    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    timer: str | None
    expires_ms: int


class Observer:
    """A sock_diag socket opened inside one namespace, kept for many samples (and its snmp table, once read)."""

    def __init__(self, ns: str):
        self.ns = ns
        with inside(ns):
            self._diag = SockDiag()
        self._snmp: int | None = None

    def close(self) -> None:
        self._diag.close()
        if self._snmp is not None:
            os.close(self._snmp)

    def segments_in(self) -> int:
        """The namespace's TCP InSegs: every segment its TCP has taken in (IPv4 and IPv6, counted as
        tcp_v4_rcv and tcp_v6_rcv begin, before any socket lookup)."""
        if self._snmp is None:
            # The calling thread's /proc/net (thread-self: inside() moves one thread) stays the namespace's
            # it was opened in; read again from offset 0 at each call.
            with inside(self.ns):
                self._snmp = os.open("/proc/thread-self/net/snmp", os.O_RDONLY | os.O_CLOEXEC)
        return counter(os.pread(self._snmp, 1 << 13, 0), "Tcp", "InSegs")

    def sockets(self, family: int = socket.AF_INET) -> list[SocketInfo]:
        """Every TCP socket of the namespace in ``family``."""
        return [_info(message) for message in self._diag.sockets(family)]

    def connection(self, family: int, local_port: int, remote_port: int,
                   addresses: tuple[str, str | None] | None = None) -> SocketInfo | None:
        """The socket of the connection between two ports, or None if CLOSED.

        ``addresses`` (local, remote; remote None with a remote port 0, a
        listener): the kernel's lookup answers, found or not (see the module's
        docstring); without them the dump is searched.
        """
        if addresses is not None:
            return self._looked_up(family, local_port, remote_port, addresses)
        for info in self.sockets(family):
            if info.local[1] == local_port and info.remote[1] == remote_port:
                return info
        return None

    def _looked_up(self, family: int, local_port: int, remote_port: int,
                   addresses: tuple[str, str | None]) -> SocketInfo | None:
        """The kernel's exact lookup: the socket, or None when the kernel has no such connection."""
        local, remote = addresses
        data = self._diag.lookup(family, (local, local_port), (remote, remote_port))
        if data is None:
            return None
        info = _info(data)
        # The kernel falls back to a listener, as for an arriving SYN: not the connection asked for.
        return info if info.local[1] == local_port and info.remote[1] == remote_port else None

    def state(self, family: int, local_port: int, remote_port: int = 0) -> str:
        """The connection's state name; CLOSED when the kernel no longer lists it."""
        info = self.connection(family, local_port, remote_port)
        return info.state if info else CLOSED

    def wait_for_state(
        self, family: int, local_port: int, remote_port: int, wanted: str, timeout: float = 1.0
    ) -> str:
        """Poll until the connection reaches ``wanted`` or ``timeout`` passes; return the last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(family, local_port, remote_port)
            if state == wanted or time.monotonic() >= deadline:
                return state
            time.sleep(0.001)


def counter(table: bytes, group: str, name: str) -> int:
    """One counter of a /proc/net/snmp or /proc/net/netstat text: a header line of names after ``group:``,
    then a line of values."""
    rows = [line.split() for line in table.splitlines() if line.startswith(f"{group}:".encode())]
    return int(rows[1][rows[0].index(name.encode())])


def _info(data: bytes) -> SocketInfo:
    """A sock_diag reply (one netlink message) as a SocketInfo."""
    family, state, timer, _, sport, dport, src, dst, _, _, expires, *_ = INET_DIAG_MSG.unpack_from(data, HEADER.size)
    size = 4 if family == socket.AF_INET else 16
    return SocketInfo(
        state=STATES.get(state, str(state)),
        local=(socket.inet_ntop(family, src[:size]), int.from_bytes(sport, "big")),
        remote=(socket.inet_ntop(family, dst[:size]), int.from_bytes(dport, "big")),
        timer=TIMERS.get(timer),
        expires_ms=expires,
    )
