"""Plain nfnetlink sockets for what pyroute2 has no client for: nfnetlink_log and nfnetlink_queue.

pyroute2 builds and reads the messages (subclasses of its ``nfgen_msg``);
the socket is an ordinary netlink socket opened inside one of the lab's
namespaces, so it hears only that namespace's packets.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from pyroute2 import NetlinkError
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.nfnetlink import nfgen_msg

from netns import namespace

NETLINK_NETFILTER = 12
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port
ERROR_CODE = struct.Struct("=i")


def open_socket(ns: str) -> socket.socket:
    """A netfilter netlink socket in namespace ``ns``."""
    with namespace.inside(ns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def send(sock: socket.socket, message: nfgen_msg, subsystem: int, kind: int, res_id: int,
         acknowledged: bool = False) -> None:
    """Send ``message``; with ``acknowledged``, wait for the kernel's answer and raise what it refused."""
    message["res_id"] = res_id
    message["header"]["type"] = (subsystem << 8) | kind
    message["header"]["flags"] = NLM_F_REQUEST | (NLM_F_ACK if acknowledged else 0)
    message.encode()
    sock.send(message.data)
    if acknowledged:
        code = ERROR_CODE.unpack_from(sock.recv(4096), HEADER.size)[0]
        if code:
            raise NetlinkError(-code, f"{type(message).__name__} {res_id}: {os.strerror(-code)}")


def messages(data: bytes, subsystem: int, kind: int) -> Iterator[bytes]:
    """The messages of one kind in what a ``recv`` returned; an error the kernel reports is raised."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, message_type = HEADER.unpack_from(data, offset)[:2]
        if message_type == (subsystem << 8) | kind:
            yield data[offset:offset + length]
        elif message_type == NLMSG_ERROR:
            code = ERROR_CODE.unpack_from(data, offset + HEADER.size)[0]
            if code:
                raise NetlinkError(-code, os.strerror(-code))
        offset += (length + 3) & ~3
