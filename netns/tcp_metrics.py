"""The kernel's TCP metrics cache of a namespace (``ip tcp_metrics``), through generic netlink.

When a connection ends, the kernel saves what it learnt about the peer (its
RTT, ssthresh, reordering, a Fast Open cookie) per destination address, and
the next connection to that address starts from those values: its first
retransmission timeout, for one. A topology kept for the next run of a batch
must forget them, as a new namespace would.
"""

from __future__ import annotations

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.generic import GenericNetlinkSocket

from netns.namespace import inside

TCP_METRICS_GENL_NAME = "tcp_metrics"  # include/uapi/linux/tcp_metrics.h
TCP_METRICS_CMD_GET = 1
TCP_METRICS_CMD_DEL = 2  # without an address: every entry of the namespace (tcp_metrics_flush_all)


class tcp_metrics_msg(genlmsg):
    """A request carries no attribute here; replies are only counted."""

    nla_map = ()


def _request(ns: str, command: int, flags: int) -> list:
    with inside(ns):
        genl = GenericNetlinkSocket()
    with genl:
        genl.bind(TCP_METRICS_GENL_NAME, tcp_metrics_msg)
        msg = tcp_metrics_msg()
        msg["cmd"] = command
        msg["version"] = 1
        return list(genl.nlm_request(msg, msg_type=genl.prid, msg_flags=flags))


def flush_tcp_metrics(ns: str) -> None:
    """Forget every destination the kernel of namespace ``ns`` saved metrics for."""
    _request(ns, TCP_METRICS_CMD_DEL, NLM_F_REQUEST | NLM_F_ACK)


def tcp_metrics_entries(ns: str) -> int:
    """How many destinations namespace ``ns`` has saved metrics for."""
    return len(_request(ns, TCP_METRICS_CMD_GET, NLM_F_REQUEST | NLM_F_DUMP))
