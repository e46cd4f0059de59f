"""Drive mode's port: the lab plays one endpoint with crafted segments, the kernel the other.

The kernel's veth end runs at MTU 65535 with host routes carrying the path
MTU (1500, or 1520 for IPv6 as the selftests' runner uses), so the lab may
inject segments larger than the MSS as through packetdrill's tun device,
while the kernel sends and advertises as on a normal link. The kernel end also
answers to ``tun0``, the name packetdrill scripts' shell lines use.

Every segment the script injects is built before the timeline starts
(lab/engine/frames.py); at its moment only the learnt numbers are written in.
"""

from __future__ import annotations

import random
import struct

from lab.errors import BadInput
from lab.observer import Observer
from lab.packets import Segment, text_to_flags
from lab.script.events import SERVER_PORT, PacketEvent
from lab.wire import Frame, Wire
from netns import IPV6_MTU, VethTopology
from netns.topology import DEFAULT_MTU

from .frames import PreparedFrame
from .kernelapp import KernelApp
from .matcher import LAB, Seen
from .numbering import Side
from .ports import Endpoint, Port
from .verify import scapy_options

TUN_ALTNAME = "tun0"
LINK_MTU = 65535
DEFAULT_WINDOW = 65535


class DrivePort(Port):
    left = LAB

    def topology(self) -> VethTopology:
        mtu = IPV6_MTU if self.family == 6 else DEFAULT_MTU
        return VethTopology(mtu=mtu, kernel_altname=TUN_ALTNAME, link_mtu=LINK_MTU)

    def setup(self, topology: VethTopology) -> Wire:
        self.topo = topology
        lab = Endpoint(LAB, topology.lab.address(self.family), random.randint(40000, 60000), Side.played(),
                       peer="kernel")
        kernel_address = topology.kernel.address(self.family)
        app = KernelApp(topology.kernel_ns, self.family, (kernel_address, SERVER_PORT), (lab.address, lab.port),
                        self.script.path)
        self.ends = {
            LAB: lab,
            "kernel": Endpoint("kernel", kernel_address, SERVER_PORT, Side(), app, Observer(topology.kernel_ns),
                               peer=LAB),
        }
        return Wire(topology.lab_ns, topology.lab_if)

    def prefix(self, sender: str) -> str:
        return "<" if sender == LAB else ">"

    def sysctl_namespaces(self, topology: VethTopology) -> list[str]:
        return [topology.kernel_ns]  # the lab's namespace stays as silent as it was built

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        return "kernel" if not frame.outgoing and segment.dst == self.ends[LAB].address else None

    def _segment(self, event: PacketEvent, seq: int, ack: int, options: tuple) -> Segment:
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        return Segment(lab.address, kernel.address, lab.port, kernel.port or SERVER_PORT, text_to_flags(event.flags),
                       seq, ack, event.window if event.window is not None else DEFAULT_WINDOW,
                       b"\0" * event.length, options)

    def prepare(self, wire: Wire) -> None:
        """Build every injected segment's frame now, with placeholder numbers."""
        self.wire = wire
        self.frames: dict[int, PreparedFrame] = {}
        for event in self.script.events:
            if not (isinstance(event, PacketEvent) and event.inbound):
                continue
            placeholder = self._segment(event, 0, 0, scapy_options(event.options, Side(offset=0, ts_offset=0)))
            try:
                self.frames[event.line] = PreparedFrame(self.topo.lab_mac, self.topo.kernel_mac, placeholder)
            except (struct.error, ValueError) as error:  # a payload beyond an IP packet's 65535 bytes
                raise BadInput(f"{self.script.path}:{event.line}: the lab cannot send this segment ({error}); "
                               "an IP packet holds at most 65535 bytes") from None

    def inject(self, event: PacketEvent) -> Seen:
        """Send the line's segment now, its numbers filled in; stamped just before the write."""
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        seq = lab.side.live(event.seq)
        ack = kernel.side.live(event.ack) if event.ack is not None and "." in event.flags else 0
        options = scapy_options(event.options, kernel.side)
        ecr = next((value[1] for name, value in options if name == "Timestamp"), None)
        edges = next((value for name, value in options if name == "SAck"), ())
        data = self.frames[event.line].fill(lab.port, kernel.port or SERVER_PORT, seq, ack, ecr, edges)
        try:
            frame = self.wire.send(data)
        except OSError as error:
            raise BadInput(f"{self.script.path}:{event.line}: the lab cannot send this segment "
                           f"({error.strerror or error})") from None
        return Seen(frame.time, self._segment(event, seq, ack, options), LAB, frame)
