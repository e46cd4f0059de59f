"""The kernel's TCP metrics cache of a namespace (``ip tcp_metrics``), through generic netlink.

When a connection ends, the kernel saves what it learnt about the peer (its
RTT, ssthresh, reordering, a Fast Open cookie) per destination address, and
the next connection to that address starts from those values: its first
retransmission timeout, for one. A topology kept for the next run of a batch
must forget them, as a new namespace would. Every reset flushes them, so the
requests are packed here (netns/netlink.py says why not with pyroute2).
"""

from __future__ import annotations

import functools
import struct

from netns.namespace import inside
from netns.netlink import HEADER, NetlinkSocket, attribute, attributes

NETLINK_GENERIC = 16
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3  # linux/genetlink.h: the controller names the families
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
GENL_HEADER = struct.Struct("=BBH")  # genlmsghdr: command, version, reserved
TCP_METRICS_GENL_NAME = b"tcp_metrics"  # include/uapi/linux/tcp_metrics.h
TCP_METRICS_CMD_GET = 1
TCP_METRICS_CMD_DEL = 2  # without an address: every entry of the namespace (tcp_metrics_flush_all)


@functools.cache
def _family() -> int:
    """The tcp_metrics family's number, as the generic netlink controller gives it: one for the whole kernel
    (families are registered once, not per namespace), so asked once per process."""
    with NetlinkSocket(NETLINK_GENERIC) as genl:
        body = GENL_HEADER.pack(CTRL_CMD_GETFAMILY, 1, 0) + attribute(CTRL_ATTR_FAMILY_NAME,
                                                                      TCP_METRICS_GENL_NAME + b"\0")
        answer = genl.get(GENL_ID_CTRL, body, "find the tcp_metrics netlink family")
    return struct.unpack_from("=H", attributes(answer, HEADER.size + GENL_HEADER.size)[CTRL_ATTR_FAMILY_ID])[0]


def _socket_in(ns: str) -> NetlinkSocket:
    with inside(ns):
        return NetlinkSocket(NETLINK_GENERIC)


def flush_tcp_metrics(ns: str) -> None:
    """Forget every destination the kernel of namespace ``ns`` saved metrics for."""
    family = _family()
    with _socket_in(ns) as genl:
        genl.request(family, 0, GENL_HEADER.pack(TCP_METRICS_CMD_DEL, 1, 0), "flush tcp_metrics")


def tcp_metrics_entries(ns: str) -> int:
    """How many destinations namespace ``ns`` has saved metrics for."""
    family = _family()
    with _socket_in(ns) as genl:
        return sum(1 for _ in genl.dump(family, GENL_HEADER.pack(TCP_METRICS_CMD_GET, 1, 0), "list tcp_metrics"))
