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
from lab.script.events import PacketEvent
from lab.wire import Frame, Wire
from netns import IPV6_MTU, VethTopology
from netns.addresses import SERVER_PORT
from netns.topology import DEFAULT_MTU

from .kernelapp import KernelApp
from .numbering import Side
from .runner import Endpoint, Run
from .verify import injected_tos, scapy_options

TUN_ALTNAME = "tun0"
LINK_MTU = 65535
DEFAULT_WINDOW = 65535


class DriveRun(Run):
    def topology(self) -> VethTopology:
        mtu = IPV6_MTU if self.family == 6 else DEFAULT_MTU
        return VethTopology(mtu=mtu, kernel_altname=TUN_ALTNAME, link_mtu=LINK_MTU)

    def setup(self, topology: VethTopology) -> Wire:
        self.topo = topology
        lab = Endpoint("lab", topology.lab.address(self.family), random.randint(40000, 60000), Side.played(),
                       peer="kernel")
        kernel_address = topology.kernel.address(self.family)
        app = KernelApp(topology.kernel_ns, self.family, (kernel_address, SERVER_PORT), (lab.address, lab.port),
                        self.script.path)
        self.ends = {
            "lab": lab,
            "kernel": Endpoint("kernel", kernel_address, SERVER_PORT, Side(), app, Observer(topology.kernel_ns),
                               peer="lab"),
        }
        self.left = "lab"
        return Wire(topology.lab_ns, topology.lab_if)

    def prefix(self, sender: str) -> str:
        return "<" if sender == "lab" else ">"

    def sysctl_namespaces(self, topology: VethTopology) -> list[str]:
        return [topology.kernel_ns]  # the lab's namespace stays as silent as it was built

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        return "kernel" if not frame.outgoing and segment.dst == self.ends["lab"].address else None

    def _learn(self, sender: str, event: PacketEvent, segment: Segment) -> None:
        # A connect() makes the kernel's port an ephemeral one, learnt from its SYN.
        kernel = self.ends["kernel"]
        if "S" in segment.flag_text and "." not in segment.flag_text:
            kernel.port = 0
        super()._learn(sender, event, segment)

    def inject(self, event: PacketEvent) -> Frame:
        lab, kernel = self.ends["lab"], self.ends["kernel"]
        ack = kernel.side.live(event.ack) if event.ack is not None and "." in event.flags else 0
        segment = Segment(
            lab.address, kernel.address, lab.port, kernel.port,
            text_to_flags(event.flags), lab.side.live(event.seq), ack,
            event.window if event.window is not None else DEFAULT_WINDOW,
            b"\0" * event.length, scapy_options(event.options, kernel.side), injected_tos(event), event.urgent or 0,
        )
        try:
            frame = self.wire.send(build_frame(self.topo.lab_mac, self.topo.kernel_mac, segment))
        except (OSError, struct.error, ValueError) as error:  # a payload beyond an IP packet's 65535 bytes
            raise BadInput(f"{self.script.path}:{event.line}: the lab cannot send this segment "
                           f"({getattr(error, 'strerror', None) or error}); an IP packet holds at most "
                           "65535 bytes") from None
        self.comments[id(frame)] = f"{self.script.path}:{event.line} {event.text}"
        self._record_step(frame, segment, "lab", line=event.line)
        return frame
