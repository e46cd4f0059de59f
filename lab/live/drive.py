"""Drive mode's port: the lab plays one endpoint with crafted segments, the kernel the other.

The kernel's veth end runs at MTU 65535 with host routes carrying the path
MTU (1500, or 1520 for IPv6 as the selftests' runner uses), so the lab may
inject segments larger than the MSS as through packetdrill's tun device,
while the kernel sends and advertises as on a normal link. The kernel end also
answers to ``tun0``, the name packetdrill scripts' shell lines use.

Every TCP segment the script injects is built before the timeline starts
(lab/live/frames.py); at its moment only the learnt numbers are written in.
An ICMP error quotes the kernel's own numbers, so it is built at its moment,
with struct (lab/tcp/icmp.py).
With ``--mss`` a segment longer than the MSS goes out as one GSO
super-segment the kernel splits, as packetdrill's tun device writes them.
Connections are counted as packetdrill counts them: the first SYN after
listen() or connect() begins a new one, with fresh sequence spaces.
"""

from __future__ import annotations

import random
import struct
import time

from lab.errors import BadInput
from lab.tcp.icmp import build_icmp_frame, type_and_code
from lab.live.observer import Observer
from lab.tcp.packets import Segment, build_frame, is_syn, text_to_flags
from lab.script.events import SERVER_PORT, IcmpEvent, PacketEvent
from lab.live.wire import Frame, Wire
from netns import VethTopology
from netns.offload import enable_segmentation

from lab.live.frames import PreparedFrame
from lab.live.kernelapp import KernelApp
from lab.judge.matcher import LAB, Seen
from lab.tcp.numbering import Side
from lab.live.ports import Endpoint, Port
from lab.live.topologies import topology_for
from lab.judge.verify import injected_tos, injected_ttl_and_flowlabel, scapy_options

DEFAULT_WINDOW = 65535
TRACED_LAB_PORTS = 16  # from a --connect_port on: the lab's ports (a new passive connection takes the next)


class DrivePort(Port):
    left = LAB

    def topology(self) -> VethTopology:
        return topology_for(False, self.family, self.settings)

    def setup(self, topology: VethTopology, ports: range) -> Wire:
        self.topo = topology
        self.connections = 0
        self.gso_size = self.settings.option("mss")
        if self.gso_size:  # --mss: the lab's super-segments cross the link whole
            enable_segmentation(topology.lab_ns, topology.lab_if)
        # --connect_port: where connect() goes (the lab's port); --bind_port: what bind() takes. Else a port of
        # the run's lease; a new passive connection takes the next one, within the lease.
        connect_port = self.settings.option("connect_port")
        self.lab_ports = range(connect_port, min(connect_port + TRACED_LAB_PORTS, 65536)) if connect_port else ports
        lab_port = connect_port or random.choice(ports)
        lab = Endpoint(LAB, topology.lab.address(self.family), lab_port, Side.played(self.settings.lab_isn),
                       peer="kernel")
        kernel_address = topology.kernel.address(self.family)
        bind_port = self.settings.option("bind_port") or SERVER_PORT
        app = KernelApp(topology.kernel_ns, self.family, (kernel_address, bind_port), (lab.address, lab.port),
                        self.script.path)
        self.ends = {
            LAB: lab,
            "kernel": Endpoint("kernel", kernel_address, bind_port, Side(), app, Observer(topology.kernel_ns),
                               peer=LAB),
        }
        self.wire = Wire(topology.lab_ns, topology.lab_if)
        self.injected, self.segments_before = 0, self.ends["kernel"].observer.segments_in()
        return self.wire

    def prefix(self, sender: str) -> str:
        return "<" if sender == LAB else ">"

    def trace_ports(self) -> range:
        """The ports the lab's connections take (the run's lease)."""
        return self.lab_ports

    def topology_reusable(self) -> bool:
        return not self.gso_size  # --mss switched segmentation offloads on at the lab's end

    def sysctl_namespaces(self, topology: VethTopology) -> list[str]:
        return [topology.kernel_ns]  # the lab's namespace stays as silent as it was built

    def after_command(self) -> None:
        self.topo.follow_link_mtu()  # a shell line may have set tun0's MTU: the path MTU from now on

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        """The kernel, for its segments of the connection under test; an earlier connection's are not read
        (as in packetdrill), nor a SYN's from another port unless it may begin a connection."""
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        if frame.outgoing or segment.dst != lab.address or segment.dport != lab.port:
            return None
        opening = is_syn(segment.flag_text)
        return "kernel" if opening or not kernel.port or segment.sport == kernel.port else None

    def on_segment(self, sender: str, segment: Segment) -> None:
        """A connect()'s SYN: the kernel's port is an ephemeral one."""
        if sender == "kernel" and is_syn(segment.flag_text):
            self.ends["kernel"].port = segment.sport

    def on_match(self, sender: str, event: PacketEvent, segment: Segment) -> None:
        """A kernel SYN matched to its line, before its numbers are learnt: a new connect()'s SYN begins
        fresh numbering (packetdrill's rule) when written from 0; one written with another seq continues
        the earlier connection's numbers, so a script can show how the new ISN follows the old (TIME_WAIT
        reuse: old snd_nxt + 65537)."""
        if sender != "kernel" or not is_syn(segment.flag_text):
            return
        if self.ends["kernel"].app.take_new_connection() and not (event.seq and self.connections):
            self._new_connection(passive=False)

    def _new_connection(self, passive: bool) -> None:
        """A new connection under test (the first SYN after listen() or connect(), as in packetdrill):
        fresh sequence spaces and, for another passive one, a new lab port (the old connection may live on)."""
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        if passive and self.connections:
            lab.port = lab.port + 1 if lab.port + 1 in self.lab_ports else self.lab_ports.start
        self.connections += 1
        lab.side, kernel.side = Side.played(self.settings.lab_isn if self.connections == 1 else None), Side()

    def _segment(self, event: PacketEvent, seq: int, ack: int, options: tuple) -> Segment:
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        return Segment(lab.address, kernel.address, lab.port, kernel.port or SERVER_PORT, text_to_flags(event.flags),
                       seq, ack, event.window if event.window is not None else DEFAULT_WINDOW,
                       b"\0" * event.length, options, injected_tos(event), event.urgent or 0,
                       *injected_ttl_and_flowlabel(event))

    def prepare(self, wire: Wire) -> None:
        """Build every injected segment's frame now, with placeholder numbers."""
        self.frames: dict[int, PreparedFrame] = {}
        for event in self.script.events:
            if not isinstance(event, PacketEvent) or not event.inbound or isinstance(event, IcmpEvent):
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
        syn = "S" in event.flags
        if syn and "." not in event.flags and kernel.app.take_new_connection():
            self._new_connection(passive=True)
        if syn:
            lab.side.claim_isn(event.seq)
        seq = lab.side.live(event.seq, syn)
        ack = kernel.side.live(event.ack, syn) if event.ack is not None and "." in event.flags else 0
        options = scapy_options(event.options, kernel.side, syn)
        ecr = next((value[1] for name, value in options if name == "Timestamp"), None)
        edges = next((value for name, value in options if name == "SAck"), ())
        data = self.frames[event.line].fill(lab.port, kernel.port or SERVER_PORT, seq, ack, ecr, edges)
        try:
            if self.gso_size and event.length > self.gso_size:
                frame = self.wire.send_gso(data, self.family, self.gso_size)
            else:
                frame = self.wire.send(data)
        except OSError as error:
            raise BadInput(f"{self.script.path}:{event.line}: the lab cannot send this segment "
                           f"({error.strerror or error})") from None
        self.injected += 1
        return Seen(frame.time, self._segment(event, seq, ack, options), LAB, frame)

    def await_taken_in(self, deadline: float) -> None:
        """The kernel takes an injected segment in on the softirq the lab's write raises, mostly before the
        write returns; on a busy or emulated machine the softirq may wait for ksoftirqd, and a tcp_info
        block read at once would see the socket before it (seen on a Debian 6.1 guest: bytes_acked 300,
        the ACK of 501 just injected). So wait until the kernel's TCP InSegs has counted every injection
        (a segment the kernel splits counts once or more; none is dropped before TCP's count but a
        malformed one), up to the line's tolerance."""
        kernel = self.ends["kernel"].observer
        while kernel.segments_in() - self.segments_before < self.injected and time.monotonic() < deadline:
            time.sleep(0.0001)

    def send_segment(self, segment: Segment) -> Seen:
        """Send a segment built now: for experiments that play segments no script line describes."""
        frame = self.wire.send(build_frame(self.topo.lab_mac, self.topo.kernel_mac, segment))
        return Seen(frame.time, segment, LAB, frame)

    def inject_icmp(self, event: IcmpEvent) -> Frame:
        """An ICMP error from the lab's address about the kernel's segment ``[start:end(len)]``."""
        lab, kernel = self.ends[LAB], self.ends["kernel"]
        try:
            kind = type_and_code(self.family, event.icmp_type, event.icmp_code)
        except ValueError as error:
            raise BadInput(f"{self.script.path}:{event.line}: {error}") from None
        quoted = Segment(kernel.address, lab.address, kernel.port, lab.port, text_to_flags("."),
                         kernel.side.live(event.seq), lab.side.live(0), DEFAULT_WINDOW, b"\0" * event.length)
        return self.wire.send(build_icmp_frame(self.topo.lab_mac, self.topo.kernel_mac, self.family, lab.address,
                                               kernel.address, kind, event.mtu, quoted))
