"""A namespace's TCP sockets through sock_diag: the dump request, and aborting them all (as ``ss -K``).

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

import errno
import functools
import os
import socket
import struct

from netns.namespace import inside
from netns.netlink import (
    ERROR_CODE,
    NETLINK_SOCK_DIAG,
    NLM_F_ACK,
    NLM_F_MATCH,
    NLM_F_REQUEST,
    NLM_F_ROOT,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from netns.netlink import HEADER as NLMSG_HEADER

SOCK_DIAG_BY_FAMILY, SOCK_DESTROY = 20, 21  # linux/sock_diag.h
ALL_STATES = (1 << 13) - 1
REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2 before its socket id: family, protocol, ext, pad, states
SOCKID = slice(NLMSG_HEADER.size + 4, NLMSG_HEADER.size + 4 + 48)  # inet_diag_msg's id, as a request takes it
PORTS = struct.Struct("!HH")  # inet_diag_sockid: source and destination port, network order
INTERFACE_AND_COOKIE = struct.Struct("=III")  # if, cookie[2]
INET_DIAG_NOCOOKIE = 0xFFFFFFFF  # linux/inet_diag.h: any socket, whatever its cookie


def _request(kind: int, flags: int, family: int, sockid: bytes = bytes(48)) -> bytes:
    body = REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + sockid
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), kind, flags, 0, 0) + body


@functools.cache
def dump_request(family: int) -> bytes:
    """The netlink request for every TCP socket of ``family`` in every state (the same bytes each time)."""
    return _request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH, family)


def _address(family: int, address: str | None) -> bytes:
    """An address as inet_diag_sockid holds it: 16 bytes, an IPv4 one in the first four; None is "any"."""
    if address is None:
        return bytes(16)
    return socket.inet_pton(family, address).ljust(16, b"\0")


def lookup_request(family: int, local: tuple[str, int], remote: tuple[str | None, int]) -> bytes:
    """The netlink request for the one TCP socket with these (address, port) ends; a remote port 0 (with
    address None) asks for the listener on the local port. The kernel looks it up in its hash tables as it
    would for an arriving segment (inet_diag_find_one_icsk), without walking them; like a segment's, the
    lookup ends at the local port's listener when no connection matches, so the caller compares ports."""
    sockid = (PORTS.pack(local[1], remote[1]) + _address(family, local[0]) + _address(family, remote[0])
              + INTERFACE_AND_COOKIE.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
    return _request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, family, sockid)


def lookup_reply(diag: socket.socket) -> bytes | None:
    """The answer to a lookup_request: the socket's inet_diag_msg message, or None when the kernel has no
    such socket (ENOENT); another error raises OSError."""
    data = diag.recv(1 << 16)
    length, kind = NLMSG_HEADER.unpack_from(data)[:2]
    if kind != NLMSG_ERROR:
        return data[:length]
    error = -ERROR_CODE.unpack_from(data, NLMSG_HEADER.size)[0]
    if error == errno.ENOENT:
        return None
    raise OSError(error, f"sock_diag refused the lookup: {os.strerror(error)}")


def replies(diag: socket.socket):
    """Each netlink message of a dump's reply, as bytes, until NLMSG_DONE; an error reply raises OSError."""
    while True:
        data = diag.recv(1 << 16)
        offset = 0
        while offset + NLMSG_HEADER.size <= len(data):
            length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR or length < NLMSG_HEADER.size:
                raise OSError("sock_diag refused the dump request")
            yield data[offset:offset + length]
            offset += (length + 3) & ~3


def abort_tcp_sockets(ns: str) -> None:
    """Abort every TCP socket left in namespace ``ns``. Each request's answer is read and let go: a socket
    that went on its own meanwhile (ENOENT), or a kernel that cannot destroy (EOPNOTSUPP), changes
    nothing for the caller, which removes the namespace next."""
    with inside(ns):
        diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    with diag:
        diag.bind((0, 0))
        for family in (socket.AF_INET, socket.AF_INET6):
            diag.send(dump_request(family))
            for message in list(replies(diag)):
                diag.send(_request(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, family, message[SOCKID]))
                diag.recv(1 << 12)


def tcp_sockets_left(ns: str) -> int:
    """How many TCP sockets namespace ``ns`` holds, in any state (TIME_WAIT and request sockets too)."""
    with inside(ns):
        diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    with diag:
        diag.bind((0, 0))
        count = 0
        for family in (socket.AF_INET, socket.AF_INET6):
            diag.send(dump_request(family))
            count += sum(1 for _ in replies(diag))
        return count
