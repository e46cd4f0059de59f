"""What a mode provides to a run (packetdrill's netdev_ops): its port.

A port builds the mode's topology, creates the endpoints (the kernel-side
applications, sock_diag observers), opens the wire, says who sent a captured
frame, and — in drive mode only — injects the lab's segments. The runner
picks the port once (``run_script``, by the script's mode) and leaves what
differs between the modes to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lab.errors import BadInput
from lab.live.observer import Observer
from lab.tcp.packets import Segment
from lab.script.events import PacketEvent, Script
from lab.live.wire import Frame, Wire
from netns import Topology

from lab.live.kernelapp import KernelApp
from lab.judge.matcher import Seen
from lab.tcp.numbering import Side
from lab.script.settings import Settings


@dataclass
class Endpoint:
    """One side of the connection under test, as the run knows it."""

    name: str  # "lab", "kernel", "client", "server"
    address: str
    port: int  # 0 until learnt from the endpoint's first SYN
    side: Side  # its sequence space and TS clock
    app: KernelApp | None = None  # real sockets (None for the side the lab plays)
    observer: Observer | None = None  # sock_diag in its namespace
    peer: str = ""

    def close(self) -> None:
        if self.app:
            self.app.close()
        if self.observer:
            self.observer.close()


class EndpointSides(Mapping):
    """Each endpoint's sequence space, as the endpoint holds it now (a new connection gives it a fresh one)."""

    def __init__(self, ends: dict[str, Endpoint]):
        self.ends = ends

    def __getitem__(self, name: str) -> Side:
        return self.ends[name].side

    def __iter__(self):
        return iter(self.ends)

    def __len__(self) -> int:
        return len(self.ends)


class Port:
    """The base every mode's port fills in."""

    left = ""  # the endpoint drawn on the left of a ladder (lab or client)

    def __init__(self, script: Script, family: int, settings: Settings):
        self.script, self.family, self.settings = script, family, settings
        self.loopback = settings.loopback
        self.ends: dict[str, Endpoint] = {}

    def topology(self) -> Topology:
        raise NotImplementedError

    def setup(self, topology: Topology, ports: range) -> Wire:
        """Create the endpoints (``self.ends``) and open the wire the run reads; the lab's side takes its
        ports from ``ports``, the run's lease (lab/live/port_lease.py)."""
        raise NotImplementedError

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        """Which endpoint sent a captured segment; None to ignore the frame."""
        raise NotImplementedError

    def prefix(self, sender: str) -> str:
        """How a script line names a segment of ``sender``."""
        return f"{sender} >"

    def topology_reusable(self) -> bool:
        """Whether this port left its topology as a reset can make it fresh again (lab/live/kept.py)."""
        return True

    def sysctl_namespaces(self, topology: Topology) -> list[str]:
        """Where a script's sysctl lines apply: every namespace with a real endpoint."""
        return list(topology.namespaces)

    def prepare(self, wire: Wire) -> None:
        """Build whatever must be ready before the timeline starts."""

    def on_segment(self, sender: str, segment: Segment) -> None:
        """A segment of ``sender`` came off the wire, before any line reads it."""

    def on_match(self, sender: str, event: PacketEvent, segment: Segment) -> None:
        """A segment of ``sender`` answers ``event``, before the matcher learns its numbers."""

    def after_command(self) -> None:
        """A command line ran (it may have changed the link)."""

    def await_taken_in(self, deadline: float) -> None:
        """Return once the kernel has taken in every segment the lab injected, or at ``deadline``."""

    def inject(self, event: PacketEvent) -> Seen:
        raise BadInput(f"{self.script.path}:{event.line}: an observe-mode script cannot inject segments")

    def inject_icmp(self, event: PacketEvent) -> Frame:
        raise BadInput(f"{self.script.path}:{event.line}: an observe-mode script cannot inject ICMP")

    def recorded_frames(self, wire: Wire) -> list[Frame]:
        """The frames the capture keeps."""
        return wire.frames

    def trace_ports(self) -> range:
        """Ports only this run uses (after ``setup``): the kernel's tracepoints are filtered on them."""
        raise NotImplementedError

    def state_owner(self, port: int) -> str:
        """Which endpoint a kernel socket with local ``port`` belongs to (0: a connect() not yet bound)."""
        return next(name for name, end in self.ends.items() if end.app)
