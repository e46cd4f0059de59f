"""A lossy link: nf_tables rules that drop (or hold back) chosen TCP segments, and the kernel's word on it.

This kernel has no netem, and tc has no drop action (act_gact is not built),
but nf_tables is: one table ``tcplab`` per namespace with a prerouting chain,
made through pyroute2 inside the lab's own namespaces (never the host's).
A rule matches a TCP segment by port (which endpoint sent it) and its exact
flags, counts the matches with ``numgen inc`` (a per-rule counter in the
kernel), and drops the one whose count it names: the next, the nth, or every
nth. Before dropping, it hands a copy to nfnetlink_log with the rule's tag as
prefix, so the lab learns from the kernel exactly which packet the link ate.
A rule with a delay hands the segment to an NFQUEUE instead, marked with the
rule's tag, and the kernel holds it until netns/holdback.py lets it go.

The rule sits on the receiving side, in prerouting: the capture, a packet
socket on the link, has already seen the segment (a packet socket taps
frames before netfilter on the way in, and on the way out), so the capture
shows what was sent and the receiver never gets it. Over veth, a segment
the client sends is dropped in the server's namespace and the other way
round; on loopback both directions pass one prerouting hook.

Everything lives in the lab's namespaces and goes with them; ``close``
removes the tables earlier all the same.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pyroute2.netlink import nla
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_ULOG, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import NFPROTO_INET
from pyroute2.nftables.main import NFTables

from netns import namespace, nfnetlink
from netns.signals import deferred_signals
from netns.holdback import Held, Holdback, queue_target

TABLE = "tcplab"
CHAIN = "link"
PREROUTING_PRIORITY = -300  # before conntrack (-200), which may not even be loaded
# nflog group 0: the namespaces are the lab's own, one group each is enough; and pyroute2 writes
# NFTA_LOG_GROUP as 32 bits where the kernel reads 16, which only group 0 survives.
NFLOG_GROUP = 0
ONCE_MODULUS = 2**32 - 1  # numgen inc counts 0, 1, 2, ... and starts over only after this many

NF_DROP = 0
IPPROTO_TCP = 6
NFT_META_MARK = 3
NFT_META_L4PROTO = 16
NFT_PAYLOAD_TRANSPORT_HEADER = 2
TCP_FLAGS_OFFSET = 13
NFT_NG_INCREMENTAL = 0

NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2


@dataclass(frozen=True)
class LossRule:
    """Which segments to drop on their way into one namespace.

    ``sport`` / ``dport`` (one of them) tell the sender; ``flags`` are the
    TCP header's flag bits, all of which must be as given. ``nth``: drop the
    nth matching segment counted from when the rule is installed, once;
    ``every``: drop every ``every``-th (the ``every``-th, twice that, ...).
    With ``delay``, hold those segments back that many seconds instead.
    ``tag`` (a positive number: the script line that asked for the rule)
    comes back with each drop and each held packet.
    """

    tag: int
    flags: int
    sport: int | None = None
    dport: int | None = None
    nth: int = 1
    every: int | None = None
    delay: float | None = None

    def __post_init__(self) -> None:
        if (self.sport is None) == (self.dport is None):
            raise ValueError("a loss rule matches the source port or the destination port")
        if self.nth < 1 or (self.every is not None and self.every < 1):
            raise ValueError("nth and every count from 1")
        if self.tag < 1 or (self.delay is not None and self.delay <= 0):
            raise ValueError("a rule's tag is a positive number, its delay more than 0 s")


@dataclass(frozen=True)
class Drop:
    """One packet a rule dropped: the rule's tag and the packet from its IP header on."""

    tag: int
    packet: bytes


def _expression(name: str, attr: str, **data) -> dict:
    return {"attrs": [("NFTA_EXPR_NAME", name),
                      ("NFTA_EXPR_DATA", {"attrs": [(f"NFTA_{attr}_{key.upper()}", value)
                                                    for key, value in data.items()]})]}


def _equals(value: bytes) -> dict:
    return _expression("cmp", "CMP", sreg=1, op=0, data={"attrs": [("NFTA_DATA_VALUE", value)]})


def _transport_bytes(offset: int, length: int) -> dict:
    return _expression("payload", "PAYLOAD", dreg=1, base=NFT_PAYLOAD_TRANSPORT_HEADER, offset=offset, len=length)


def rule_expressions(rule: LossRule) -> list[dict]:
    """The rule as nf_tables expressions: match TCP, the port, the flags, the count; log and drop,
    or mark and queue."""
    port_offset, port = (0, rule.sport) if rule.sport is not None else (2, rule.dport)
    modulus, wanted = (rule.every, rule.every - 1) if rule.every else (ONCE_MODULUS, rule.nth - 1)
    return [
        _expression("meta", "META", dreg=1, key=NFT_META_L4PROTO), _equals(bytes([IPPROTO_TCP])),
        _transport_bytes(port_offset, 2), _equals(struct.pack("!H", port)),
        _transport_bytes(TCP_FLAGS_OFFSET, 1), _equals(bytes([rule.flags])),
        # Counts only the segments that got this far: the ones the rule describes.
        _expression("numgen", "NG", dreg=1, modulus=modulus, type=NFT_NG_INCREMENTAL),
        _equals(struct.pack("=I", wanted)),  # numgen's register holds a host-order u32
        *(_held_back(rule.tag) if rule.delay is not None else _dropped(rule.tag)),
    ]


def _dropped(tag: int) -> list[dict]:
    return [_expression("log", "LOG", group=NFLOG_GROUP, prefix=str(tag)),
            _expression("immediate", "IMMEDIATE", dreg=0,
                        data={"attrs": [("NFTA_DATA_VERDICT", {"attrs": [("NFTA_VERDICT_CODE", NF_DROP)]})]})]


def _held_back(tag: int) -> list[dict]:
    mark = {"attrs": [("NFTA_DATA_VALUE", struct.pack("=I", tag))]}  # host order, as meta reads it
    return [_expression("immediate", "IMMEDIATE", dreg=1, data=mark),
            _expression("meta", "META", key=NFT_META_MARK, sreg=1),
            queue_target()]


class _NflogConfig(nfgen_msg):
    nla_map = (
        ("NFULA_CFG_UNSPEC", "none"),
        ("NFULA_CFG_CMD", "uint8"),
        ("NFULA_CFG_MODE", "cfg_mode"),
        ("NFULA_CFG_NLBUFSIZ", "be32"),
        ("NFULA_CFG_TIMEOUT", "be32"),
        ("NFULA_CFG_QTHRESH", "be32"),
    )

    class cfg_mode(nla):
        fields = (("copy_range", ">I"), ("copy_mode", "B"), ("pad", "B"))


class _NflogPacket(nfgen_msg):
    nla_map = (
        ("NFULA_UNSPEC", "none"),
        ("NFULA_PACKET_HDR", "hex"),
        ("NFULA_MARK", "hex"),
        ("NFULA_TIMESTAMP", "hex"),
        ("NFULA_IFINDEX_INDEV", "hex"),
        ("NFULA_IFINDEX_OUTDEV", "hex"),
        ("NFULA_IFINDEX_PHYSINDEV", "hex"),
        ("NFULA_IFINDEX_PHYSOUTDEV", "hex"),
        ("NFULA_HWADDR", "hex"),
        ("NFULA_PAYLOAD", "cdata"),
        ("NFULA_PREFIX", "asciiz"),
    )


class _NflogListener:
    """A netlink socket bound to the nflog group of the namespace it was made in."""

    def __init__(self, ns: str):
        self._sock = nfnetlink.open_socket(ns)
        try:
            config = _NflogConfig()
            config["attrs"] = [("NFULA_CFG_CMD", NFULNL_CFG_CMD_BIND),
                               ("NFULA_CFG_MODE", {"copy_range": 0xFFFF, "copy_mode": NFULNL_COPY_PACKET, "pad": 0}),
                               ("NFULA_CFG_QTHRESH", 1)]  # each drop at once, not batched by 100 or a second
            nfnetlink.send(self._sock, config, NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG, NFLOG_GROUP, acknowledged=True)
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise

    def drain(self) -> list[Drop]:
        """Every drop reported so far, in the order the kernel made them."""
        drops = []
        while True:
            try:
                data = self._sock.recv(1 << 17)
            except BlockingIOError:
                return drops
            for raw in nfnetlink.messages(data, NFNL_SUBSYS_ULOG, NFULNL_MSG_PACKET):
                message = _NflogPacket(raw)
                message.decode()
                drops.append(Drop(int(message.get_attr("NFULA_PREFIX") or 0),
                                  bytes(message.get_attr("NFULA_PAYLOAD") or b"")))

    def close(self) -> None:
        self._sock.close()


class LinkLoss:
    """The loss rules of one run, per namespace; used as a context manager so they always go."""

    def __init__(self):
        self._tables: dict[str, NFTables] = {}
        self._listeners: dict[str, _NflogListener] = {}
        self._holdbacks: dict[str, Holdback] = {}

    def __enter__(self) -> LinkLoss:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add(self, ns: str, rule: LossRule) -> None:
        """Install ``rule`` in namespace ``ns`` (its table, chain and nflog listener on first use). Signals
        wait until it is in: one landing between a request and its answer would leave pyroute2's socket
        waiting for an answer already gone, and the teardown's own requests on it would wait forever."""
        with deferred_signals():
            self._add(ns, rule)

    def _add(self, ns: str, rule: LossRule) -> None:
        nft = self._tables.get(ns)
        if nft is None:
            self._listeners[ns] = _NflogListener(ns)
            with namespace.inside(ns):
                nft = NFTables(nfgen_family=NFPROTO_INET)
            self._tables[ns] = nft
            nft.table("add", name=TABLE)
            nft.chain("add", table=TABLE, name=CHAIN, hook="prerouting", type="filter",
                      priority=PREROUTING_PRIORITY)
        if rule.delay is not None:
            if ns not in self._holdbacks:
                self._holdbacks[ns] = Holdback(ns)
            self._holdbacks[ns].hold(rule.tag, rule.delay)
        nft.rule("add", table=TABLE, chain=CHAIN, expressions=[rule_expressions(rule)])

    def drops(self) -> list[Drop]:
        """What the rules dropped so far, namespace by namespace, each in the kernel's order."""
        return [drop for listener in self._listeners.values() for drop in listener.drain()]

    def held(self) -> list[Held]:
        """What the rules held back and let go so far (``Held.mark`` is the rule's tag)."""
        return [packet for holdback in self._holdbacks.values() for packet in holdback.held()]

    def close(self) -> None:
        """Remove the tables, stop holding back, close the sockets (idempotent; signals wait, as for add)."""
        with deferred_signals():
            self._close()

    def _close(self) -> None:
        while self._holdbacks:
            self._holdbacks.popitem()[1].close()
        while self._tables:
            ns, nft = self._tables.popitem()
            try:
                nft.table("del", name=TABLE)  # the socket keeps its namespace alive until closed
            finally:
                nft.close()
        while self._listeners:
            self._listeners.popitem()[1].close()


def tables(ns: str | None) -> list[str]:
    """The nf_tables tables of namespace ``ns`` (None: the caller's own): for tests and checks."""
    def names() -> list[str]:
        with NFTables(nfgen_family=0) as nft:
            return [table.get_attr("NFTA_TABLE_NAME") for table in nft.get_tables()]
    if ns is None:
        return names()
    with namespace.inside(ns):
        return names()
