"""A slow link for chosen segments: the kernel holds them in an NFQUEUE until the lab lets them go.

This kernel has no netem, so there is no qdisc that delays one chosen packet
by a fixed time. nf_tables can hand a packet to a queue instead (the NFQUEUE
target, through nft_compat: this kernel has no native nft queue
expression); the packet then waits inside the kernel until someone gives
the verdict. A ``Holdback`` binds queue ``QUEUE`` of one namespace; the rule
that queues a packet first sets its mark to the rule's number, so the
holdback knows whose packet it is and how long to hold it. A thread of its
own notes each packet's arrival and accepts it that many seconds later: the
bytes never leave the kernel, only the verdict comes from here. Closing the
socket lets the kernel drop whatever is still held.
"""

from __future__ import annotations

import heapq
import select
import struct
import threading
import time
from dataclasses import dataclass

from pyroute2 import NetlinkError
from pyroute2.netlink import nla
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_QUEUE, nfgen_msg

from netns import nfnetlink
from netns.signals import start_blocking_signals

NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NF_ACCEPT = 1
NFQ_TARGET_REVISION = 3  # struct xt_NFQ_info_v3: queuenum, queues_total, flags (u16 each, host order)
QUEUE = 0  # one queue per namespace: the packet's mark tells the rules apart
POLL_SECONDS = 0.05  # how soon the thread notices it should stop


def queue_target() -> dict:
    """The nf_tables expression that hands a packet to the NFQUEUE (the xt target, via nft_compat)."""
    info = struct.pack("=HHHxx", QUEUE, 1, 0)  # padded to XT_ALIGN (8 bytes)
    return {"attrs": [("NFTA_EXPR_NAME", "target"),
                      ("NFTA_EXPR_DATA", {"attrs": [("NFTA_TARGET_NAME", "NFQUEUE"),
                                                    ("NFTA_TARGET_REV", NFQ_TARGET_REVISION),
                                                    ("NFTA_TARGET_INFO", info)]})]}


@dataclass(frozen=True)
class Held:
    """One packet the link held back: the rule's mark, the packet from its IP header on, and for how long
    (so far, when it is still held)."""

    mark: int
    packet: bytes
    seconds: float
    released: bool = True


class _QueueConfig(nfgen_msg):
    nla_map = (
        ("NFQA_CFG_UNSPEC", "none"),
        ("NFQA_CFG_CMD", "cfg_cmd"),
        ("NFQA_CFG_PARAMS", "cfg_params"),
    )

    class cfg_cmd(nla):
        fields = (("command", "B"), ("pad", "B"), ("pf", ">H"))

    class cfg_params(nla):
        fields = (("copy_range", ">I"), ("copy_mode", "B"))


class _QueuePacket(nfgen_msg):
    nla_map = (
        ("NFQA_UNSPEC", "none"),
        ("NFQA_PACKET_HDR", "packet_hdr"),
        ("NFQA_VERDICT_HDR", "hex"),
        ("NFQA_MARK", "be32"),
        ("NFQA_TIMESTAMP", "hex"),
        ("NFQA_IFINDEX_INDEV", "hex"),
        ("NFQA_IFINDEX_OUTDEV", "hex"),
        ("NFQA_IFINDEX_PHYSINDEV", "hex"),
        ("NFQA_IFINDEX_PHYSOUTDEV", "hex"),
        ("NFQA_HWADDR", "hex"),
        ("NFQA_PAYLOAD", "cdata"),
    )

    class packet_hdr(nla):
        fields = (("packet_id", ">I"), ("hw_protocol", ">H"), ("hook", "B"))


class _QueueVerdict(nfgen_msg):
    nla_map = (
        ("NFQA_UNSPEC", "none"),
        ("NFQA_PACKET_HDR", "hex"),
        ("NFQA_VERDICT_HDR", "verdict_hdr"),
    )

    class verdict_hdr(nla):
        fields = (("verdict", ">I"), ("id", ">I"))


class Holdback:
    """The queue of one namespace: each packet is let go its rule's delay after it arrived."""

    def __init__(self, ns: str):
        self._sock = nfnetlink.open_socket(ns)
        self._delays: dict[int, float] = {}  # mark -> seconds
        self._due: list[tuple[float, int, int, float, bytes]] = []  # (release, mark, packet id, arrival, packet)
        self._held: list[Held] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        try:
            config = _QueueConfig()
            config["attrs"] = [("NFQA_CFG_CMD", {"command": NFQNL_CFG_CMD_BIND, "pad": 0, "pf": 0}),
                               ("NFQA_CFG_PARAMS", {"copy_range": 0xFFFF, "copy_mode": NFQNL_COPY_PACKET})]
            nfnetlink.send(self._sock, config, NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, QUEUE, acknowledged=True)
        except BaseException:
            self._sock.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="link holdback", daemon=True)
        start_blocking_signals(self._thread)

    def hold(self, mark: int, delay: float) -> None:
        """Packets that come marked ``mark`` wait ``delay`` seconds (call before the rule that marks them)."""
        with self._lock:
            self._delays[mark] = delay

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self._lock:
                    due = []
                    while self._due and self._due[0][0] <= now:
                        _, mark, packet_id, arrival, payload = heapq.heappop(self._due)
                        # Recorded before the kernel lets it go, so that whoever sees its effect (a connect()
                        # that returns) already finds it in held().
                        self._held.append(Held(mark, payload, now - arrival))
                        due.append(packet_id)
                    wait = min(self._due[0][0] - now, POLL_SECONDS) if self._due else POLL_SECONDS
                for packet_id in due:
                    self._release(packet_id)
                if select.select([self._sock], [], [], max(wait, 0.0))[0]:
                    self._take(self._sock.recv(1 << 17), time.monotonic())
        except (OSError, NetlinkError) as error:  # the socket closed under us, or a verdict was refused
            if not self._stop.is_set():
                self._failure = error

    def _take(self, data: bytes, arrival: float) -> None:
        for raw in nfnetlink.messages(data, NFNL_SUBSYS_QUEUE, NFQNL_MSG_PACKET):
            message = _QueuePacket(raw)
            message.decode()
            mark = message.get_attr("NFQA_MARK") or 0
            packet_id = message.get_attr("NFQA_PACKET_HDR")["packet_id"]
            payload = bytes(message.get_attr("NFQA_PAYLOAD") or b"")
            with self._lock:
                heapq.heappush(self._due, (arrival + self._delays.get(mark, 0.0), mark, packet_id, arrival, payload))

    def _release(self, packet_id: int) -> None:
        verdict = _QueueVerdict()
        verdict["attrs"] = [("NFQA_VERDICT_HDR", {"verdict": NF_ACCEPT, "id": packet_id})]
        nfnetlink.send(self._sock, verdict, NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT, QUEUE)

    def held(self) -> list[Held]:
        """The packets let go so far, in the order they were let go, then those still held."""
        if self._failure is not None:
            raise NetlinkError(0, f"the link's holdback failed: {self._failure}")
        now = time.monotonic()
        with self._lock:
            waiting = [Held(mark, payload, now - arrival, released=False)
                       for _, mark, _, arrival, payload in sorted(self._due)]
            return self._held + waiting

    def close(self) -> None:
        """Stop the thread and close the socket: the kernel drops what it still holds (idempotent)."""
        self._stop.set()
        self._thread.join()
        self._sock.close()
