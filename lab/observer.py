"""Socket states read from the kernel with sock_diag (pyroute2 DiagSocket).

sock_diag sees every TCP socket of a namespace, also those without a file
descriptor: request sockets in SYN_RECV, orphans in FIN_WAIT_1/2 or LAST_ACK,
and TIME_WAIT minisocks with the time they have left. A connection that
sock_diag no longer lists is CLOSED.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from pyroute2 import DiagSocket

from netns import inside

# Kernel TCP states (include/net/tcp_states.h); request sockets report SYN_RECV.
STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}
CLOSED = "CLOSED"
ALL_STATES = (1 << 13) - 1
# idiag_timer: which timer is pending (net/ipv4/tcp_diag.c / inet_diag.c)
TIMERS = {0: None, 1: "retransmit", 2: "keepalive", 3: "time_wait", 4: "probe"}


@dataclass(frozen=True)
class SocketInfo:
    """One TCP socket as sock_diag reports it."""

    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    timer: str | None
    expires_ms: int


class Observer:
    """A sock_diag socket opened inside one namespace, kept for many samples."""

    def __init__(self, ns: str):
        with inside(ns):
            self._diag = DiagSocket()
            self._diag.bind()

    def close(self) -> None:
        self._diag.close()

    def sockets(self, family: int = socket.AF_INET) -> list[SocketInfo]:
        """Every TCP socket of the namespace in ``family``."""
        found = []
        for msg in self._diag.get_sock_stats(family=family, states=ALL_STATES):
            found.append(
                SocketInfo(
                    state=STATES.get(msg["idiag_state"], str(msg["idiag_state"])),
                    local=(msg["idiag_src"], msg["idiag_sport"]),
                    remote=(msg["idiag_dst"], msg["idiag_dport"]),
                    timer=TIMERS.get(msg["idiag_timer"]),
                    expires_ms=msg["idiag_expires"],
                )
            )
        return found

    def connection(self, family: int, local_port: int, remote_port: int) -> SocketInfo | None:
        """The socket of the connection between two ports, or None if CLOSED."""
        for info in self.sockets(family):
            if info.local[1] == local_port and info.remote[1] == remote_port:
                return info
        return None

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
