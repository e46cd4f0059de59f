"""Netlink as a run's own requests speak it: headers, attributes, a request and its answer.

A run makes a handful of netlink requests (build a veth pair, read a
socket's state), and each tcplab process makes them once. pyroute2 would
make them too, but importing it costs a process ~100 ms (its package
imports every module it has, asyncio among them) and each IPRoute request
runs an asyncio loop: more than the whole topology takes to build. So the
requests of every run are packed here with struct (rtnetlink: netns/rtnl.py;
sock_diag: netns/sockets.py; generic netlink: netns/tcp_metrics.py), and
pyroute2 serves the rarer requests whose messages are large (tc:
netns/shaping.py; nf_tables: netns/loss.py).
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
from collections.abc import Iterator

# linux/netlink.h
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200  # a dump (NLM_F_DUMP)
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400  # with a new object
NLMSG_ERROR, NLMSG_DONE = 2, 3
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
ERROR_CODE = struct.Struct("=i")  # nlmsgerr.error, just after the header
ATTRIBUTE = struct.Struct("=HH")  # rtattr / nlattr: length, type
NLA_F_NESTED = 0x8000
RECEIVE_SIZE = 1 << 16

_sequence = itertools.count(1)


class NetlinkRefused(OSError):
    """The kernel refused a netlink request: its errno, and what was asked."""


def align(length: int) -> int:
    return (length + 3) & ~3


def attribute(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to four bytes."""
    data = ATTRIBUTE.pack(ATTRIBUTE.size + len(payload), kind) + payload
    return data.ljust(align(len(data)), b"\0")


def nested(kind: int, *attributes: bytes) -> bytes:
    return attribute(kind | NLA_F_NESTED, b"".join(attributes))


def attributes(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from ``offset`` on: type (nested flag off) -> payload; a repeated type keeps its first."""
    found: dict[int, bytes] = {}
    while offset + ATTRIBUTE.size <= len(data):
        length, kind = ATTRIBUTE.unpack_from(data, offset)
        if length < ATTRIBUTE.size:
            break
        found.setdefault(kind & ~NLA_F_NESTED, data[offset + ATTRIBUTE.size:offset + length])
        offset += align(length)
    return found


def message(kind: int, flags: int, body: bytes, sequence: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(body), kind, flags, sequence, 0) + body


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence, whole message) for each netlink message in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, sequence, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield kind, sequence, data[offset:offset + length]
        offset += align(length)


def error_of(whole: bytes) -> int:
    """The errno an NLMSG_ERROR message carries (0: an acknowledgement)."""
    return -ERROR_CODE.unpack_from(whole, HEADER.size)[0]


class NetlinkSocket:
    """A netlink socket of ``protocol`` in the calling thread's network namespace, for requests in turn."""

    def __init__(self, protocol: int):
        self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self.socket.bind((0, 0))
        except OSError:
            self.socket.close()
            raise

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.socket.close()

    def request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        """Send a request that changes something and wait for its acknowledgement; NetlinkRefused if refused."""
        for _ in self._answers(kind, NLM_F_ACK | flags, body, what, single=False):
            pass  # a change is answered by its acknowledgement alone

    def get(self, kind: int, body: bytes, what: str) -> bytes:
        """The one message that answers a request for one object."""
        return next(self._answers(kind, 0, body, what, single=True))

    def dump(self, kind: int, body: bytes, what: str, flags: int = NLM_F_ROOT | NLM_F_MATCH) -> Iterator[bytes]:
        """Each message of the answer to a request for many objects."""
        yield from self._answers(kind, flags, body, what, single=False)

    def _answers(self, kind: int, flags: int, body: bytes, what: str, single: bool) -> Iterator[bytes]:
        """Send a request; yield the messages that answer it, up to its end (NLMSG_DONE, an acknowledgement, or
        with ``single`` the one message of a get); NetlinkRefused if refused."""
        sequence = next(_sequence)
        self.socket.send(message(kind, NLM_F_REQUEST | flags, body, sequence))
        while True:
            for answer, answered, whole in messages(self.socket.recv(RECEIVE_SIZE)):
                if answered != sequence:
                    continue
                if answer == NLMSG_DONE:
                    return
                if answer == NLMSG_ERROR:
                    code = error_of(whole)
                    if code:
                        raise NetlinkRefused(code, f"{what}: {os.strerror(code)}")
                    return
                yield whole
                if single:
                    return
