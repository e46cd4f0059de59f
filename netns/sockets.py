"""A namespace's TCP sockets through sock_diag (``SockDiag``): listed, looked up, aborted (as ``ss -K``).

Removing a namespace does not end its sockets. An orphan (closed by its
application, its FIN unanswered) goes on retransmitting for minutes in a
namespace no one can see any more, keeps it alive in the kernel, and may
die during a later run whose ports are near its own, where that run's trace
would see it. So a topology aborts what TCP sockets its namespaces still hold
before removing them (SOCK_DESTROY, which ends orphans and TIME_WAIT
minisocks too since Linux 6.11; where the kernel lacks
CONFIG_INET_DIAG_DESTROY, the namespaces are removed all the same).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from collections.abc import Iterator

from netns.namespace import inside
from netns.netlink import HEADER, NETLINK_SOCK_DIAG, NetlinkRefused, NetlinkSocket

SOCK_DIAG_BY_FAMILY, SOCK_DESTROY = 20, 21  # linux/sock_diag.h
ALL_STATES = (1 << 13) - 1
REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2 before its socket id: family, protocol, ext, pad, states
# struct inet_diag_msg (linux/inet_diag.h): family, state, timer, retransmits; the socket id (ports in network
# order, source and destination addresses, interface, cookie); expires (ms), queues, uid, inode.
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")
SOCKID_LENGTH = struct.calcsize("=2s2s16s16sIQ")  # inet_diag_sockid, as a request takes it back
SOCKID = slice(HEADER.size + 4, HEADER.size + 4 + SOCKID_LENGTH)  # in a reply: after family, state, timer, retrans
PORTS = struct.Struct("!HH")  # inet_diag_sockid: source and destination port, network order
INTERFACE_AND_COOKIE = struct.Struct("=III")  # if, cookie[2]
INET_DIAG_NOCOOKIE = 0xFFFFFFFF  # linux/inet_diag.h: any socket, whatever its cookie


def _body(family: int, sockid: bytes = bytes(SOCKID_LENGTH)) -> bytes:
    return REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + sockid


def _address(family: int, address: str | None) -> bytes:
    """An address as inet_diag_sockid holds it: 16 bytes, an IPv4 one in the first four; None is "any"."""
    if address is None:
        return bytes(16)
    return socket.inet_pton(family, address).ljust(16, b"\0")


class SockDiag(NetlinkSocket):
    """A sock_diag socket in the calling thread's namespace: its TCP sockets, each an inet_diag_msg message."""

    def __init__(self):
        super().__init__(NETLINK_SOCK_DIAG)

    def sockets(self, family: int) -> Iterator[bytes]:
        """Every TCP socket of ``family``, in every state."""
        return self.dump(SOCK_DIAG_BY_FAMILY, _body(family), "list TCP sockets")

    def lookup(self, family: int, local: tuple[str, int], remote: tuple[str | None, int]) -> bytes | None:
        """The one TCP socket with these (address, port) ends, or None when the kernel has none (ENOENT); a
        remote port 0 (with address None) asks for the listener on the local port. The kernel looks it up
        in its hash tables as it would for an arriving segment (inet_diag_find_one_icsk), without walking
        them; like a segment's, the lookup ends at the local port's listener when no connection matches,
        so the caller compares ports."""
        sockid = (PORTS.pack(local[1], remote[1]) + _address(family, local[0]) + _address(family, remote[0])
                  + INTERFACE_AND_COOKIE.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
        try:
            return self.get(SOCK_DIAG_BY_FAMILY, _body(family, sockid), "look up a TCP socket")
        except NetlinkRefused as error:
            if error.errno == errno.ENOENT:
                return None
            raise

    def destroy(self, family: int, message: bytes) -> None:
        """Abort the socket a ``sockets`` message names. One that went on its own meanwhile (ENOENT), or a
        kernel that cannot destroy (EOPNOTSUPP), changes nothing for the callers, which remove the
        namespace next."""
        with contextlib.suppress(NetlinkRefused):
            self.request(SOCK_DESTROY, 0, _body(family, message[SOCKID]), "abort a TCP socket")


def abort_tcp_sockets(ns: str) -> None:
    """Abort every TCP socket left in namespace ``ns``."""
    with inside(ns):
        diag = SockDiag()
    with diag:
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in list(diag.sockets(family)):
                diag.destroy(family, message)


def tcp_sockets_left(ns: str) -> int:
    """How many TCP sockets namespace ``ns`` holds, in any state (TIME_WAIT and request sockets too)."""
    with inside(ns):
        diag = SockDiag()
    with diag:
        return sum(1 for family in (socket.AF_INET, socket.AF_INET6) for _ in diag.sockets(family))
