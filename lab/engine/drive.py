"""Drive mode: the lab plays one endpoint with crafted segments, the kernel the other.

The kernel's veth end runs at MTU 65535 with host routes carrying the path
MTU (1500, or 1520 for IPv6 as the selftests' runner uses), so the lab may
inject segments larger than the MSS as through packetdrill's tun device,
while the kernel sends and advertises as on a normal link. The kernel end also
answers to ``tun0``, the name packetdrill scripts' shell lines use.
"""

from __future__ import annotations

import random
import struct

from lab.errors import BadInput
from lab.observer import Observer
from lab.packets import Segment, build_frame, text_to_flags
from lab.icmp import build_icmp_frame, type_and_code
from lab.script.events import IcmpEvent, PacketEvent
from lab.wire import Frame, Wire
from netns import IPV6_MTU, VethTopology
from netns.addresses import SERVER_PORT
from netns.offload import enable_segmentation
from netns.topology import DEFAULT_MTU

from .kernelapp import KernelApp
from .numbering import Side
from .runner import Endpoint, Run
from .verify import injected_tos, injected_ttl_and_flowlabel, scapy_options

TUN_ALTNAME = "tun0"
LINK_MTU = 65535
DEFAULT_WINDOW = 65535


class DriveRun(Run):
    def _option(self, name: str, default: int, low: int, high: int) -> int:
        """A numeric option line of packetdrill's (--mtu=, --bind_port=, --connect_port=), else ``default``."""
        value = self.script.options.get(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise BadInput(f"{self.script.path}: option --{name}={value}: a number from {low} to {high}")
        return int(value)

    def topology(self) -> VethTopology:
        mtu = self._option("mtu", IPV6_MTU if self.family == 6 else DEFAULT_MTU, 576, 9000)
        return VethTopology(mtu=mtu, kernel_altname=TUN_ALTNAME, link_mtu=LINK_MTU)

    def setup(self, topology: VethTopology) -> Wire:
        self.topo = topology
        self.connections = 0
        if self.script.options.get("mss"):  # --mss: the lab's super-segments cross the link whole
            enable_segmentation(topology.lab_ns, topology.lab_if)
        # --connect_port: where connect() goes (the lab's port); --bind_port: what bind() takes.
        lab = Endpoint("lab", topology.lab.address(self.family),
                       self._option("connect_port", random.randint(40000, 60000), 1, 65535), Side.played(),
                       peer="kernel")
        kernel_address = topology.kernel.address(self.family)
        bind_port = self._option("bind_port", SERVER_PORT, 1, 65535)
        app = KernelApp(topology.kernel_ns, self.family, (kernel_address, bind_port), (lab.address, lab.port),
                        self.script.path)
        self.ends = {
            "lab": lab,
            "kernel": Endpoint("kernel", kernel_address, bind_port, Side(), app, Observer(topology.kernel_ns),
                               peer="lab"),
        }
        self.left = "lab"
        return Wire(topology.lab_ns, topology.lab_if)

    def _command(self, event) -> None:
        super()._command(event)
        self.topo.follow_link_mtu()  # a shell line may have set tun0's MTU: the path MTU from now on

    def prefix(self, sender: str) -> str:
        return "<" if sender == "lab" else ">"

    def sysctl_namespaces(self, topology: VethTopology) -> list[str]:
        return [topology.kernel_ns]  # the lab's namespace stays as silent as it was built

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        """The kernel, for its segments of the connection under test; an earlier connection's are not read
        (as in packetdrill), nor a SYN's from another port unless it may begin a connection."""
        lab, kernel = self.ends["lab"], self.ends["kernel"]
        if frame.outgoing or segment.dst != lab.address or segment.dport != lab.port:
            return None
        opening = "S" in segment.flag_text and "." not in segment.flag_text
        return "kernel" if opening or not kernel.port or segment.sport == kernel.port else None

    def _learn(self, sender: str, event: PacketEvent, segment: Segment) -> None:
        # A connect() makes the kernel's port an ephemeral one, learnt from its SYN.
        kernel = self.ends["kernel"]
        if "S" in segment.flag_text and "." not in segment.flag_text:
            kernel.port = 0
            # A new connect()'s SYN begins fresh numbering (packetdrill's rule) when written from 0; one
            # written with another seq continues the earlier connection's numbers, so a script can show
            # how the new ISN follows the old (TIME_WAIT reuse: old snd_nxt + 65537).
            if kernel.app.take_new_connection() and not (event.seq and self.connections):
                self._new_connection(passive=False)
        self._check_ts_progress(event, segment)
        super()._learn(sender, event, segment)

    def _check_ts_progress(self, event: PacketEvent, segment: Segment) -> None:
        """``--tcp_ts_tick_usecs=N``: the kernel's TS val may stray from the script's by at most the
        tolerance, counted in ticks of N microseconds (packetdrill's check; the tolerance grows with
        the time since the script began)."""
        tick = int(self.script.options.get("tcp_ts_tick_usecs") or 0)
        side = self.ends["kernel"].side
        expected = [option.values[0] for option in event.options or () if option.kind == "TS"]
        live = segment.option("Timestamp")
        if not (tick and expected and isinstance(live, tuple) and side.ts_offset is not None):
            return
        elapsed = self.previous + event.timing.start if event.timing.relative else event.timing.start
        tolerance = max(self.settings.tolerance_usecs, self.settings.tolerance_percent / 100 * elapsed * 1e6)
        stray = (side.ts_script(live[0]) - expected[0] + 2**31) % 2**32 - 2**31
        if abs(stray) * tick > tolerance:
            problem = (f"TS val: expected {expected[0]}, got {side.ts_script(live[0])} ({abs(stray)} ticks of "
                       f"{tick} us off, tolerance {tolerance:.0f} us)")
            raise self._failure(event, problem, fields=[problem])

    def _new_connection(self, passive: bool) -> None:
        """A new connection under test (the first SYN after listen() or connect(), as in packetdrill):
        fresh sequence spaces and, for another passive one, a new lab port (the old connection may live on)."""
        lab, kernel = self.ends["lab"], self.ends["kernel"]
        if passive and self.connections:
            lab.port = lab.port + 1 if lab.port < 65535 else 40000
        self.connections += 1
        lab.side, kernel.side = Side.played(), Side()

    def inject(self, event: PacketEvent) -> Frame:
        lab, kernel = self.ends["lab"], self.ends["kernel"]
        if isinstance(event, IcmpEvent):
            return self._inject_icmp(event)
        syn = "S" in event.flags
        if syn and "." not in event.flags and kernel.app.take_new_connection():
            self._new_connection(passive=True)
        if syn:
            lab.side.claim_isn(event.seq)
        ack = kernel.side.live(event.ack, syn) if event.ack is not None and "." in event.flags else 0
        segment = Segment(
            lab.address, kernel.address, lab.port, kernel.port,
            text_to_flags(event.flags), lab.side.live(event.seq, syn), ack,
            event.window if event.window is not None else DEFAULT_WINDOW,
            b"\0" * event.length, scapy_options(event.options, kernel.side, syn), injected_tos(event),
            event.urgent or 0, *injected_ttl_and_flowlabel(event),
        )
        try:
            data = build_frame(self.topo.lab_mac, self.topo.kernel_mac, segment)
            gso_size = int(self.script.options.get("mss") or 0)
            if gso_size and event.length > gso_size:
                frame = self.wire.send_gso(data, self.family, len(data) - event.length, gso_size)
            else:
                frame = self.wire.send(data)
        except (OSError, struct.error, ValueError) as error:  # a payload beyond an IP packet's 65535 bytes
            raise BadInput(f"{self.script.path}:{event.line}: the lab cannot send this segment "
                           f"({getattr(error, 'strerror', None) or error}); an IP packet holds at most "
                           "65535 bytes") from None
        self.comments[id(frame)] = f"{self.script.path}:{event.line} {event.text}"
        self._record_step(frame, segment, "lab", line=event.line)
        return frame

    def _inject_icmp(self, event: IcmpEvent) -> Frame:
        """An ICMP error from the lab's address about the kernel's segment ``[start:end(len)]``."""
        lab, kernel = self.ends["lab"], self.ends["kernel"]
        try:
            kind = type_and_code(self.family, event.icmp_type, event.icmp_code)
        except ValueError as error:
            raise BadInput(f"{self.script.path}:{event.line}: {error}") from None
        quoted = Segment(kernel.address, lab.address, kernel.port, lab.port, text_to_flags("."),
                         kernel.side.live(event.seq), lab.side.live(0), DEFAULT_WINDOW, b"\0" * event.length)
        frame = self.wire.send(build_icmp_frame(self.topo.lab_mac, self.topo.kernel_mac, self.family, lab.address,
                                                kernel.address, kind, event.mtu, quoted))
        self.comments[id(frame)] = f"{self.script.path}:{event.line} {event.text}"
        return frame
