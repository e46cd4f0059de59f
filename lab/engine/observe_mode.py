"""Observe mode: a real client and a real server, traced over veth or loopback.

The client's sockets live in the lab namespace (its veth end holds
198.18.0.2 / 2001:db8::2), the server's in the kernel namespace; with
``--loopback`` both live in one namespace on 127.0.0.1 / ::1. A packet socket
opened before the first syscall sees both directions; on loopback every frame
passes it twice (out, then in), so only the outgoing copy is kept.

``--server=unreachable`` (an option line) points the client's connect() at
198.18.0.3 / 2001:db8::3, whose permanent neighbour entry names a MAC that no
interface owns: the SYNs leave and nothing ever answers.
"""

from __future__ import annotations

from lab.errors import BadInput
from lab.observer import Observer
from lab.packets import Segment
from lab.wire import Frame, Wire
from netns import IPV6_MTU, LoopbackTopology, Topology, VethTopology, inside
from netns.addresses import Endpoint as Addresses
from netns.topology import DEFAULT_MTU, NUD_PERMANENT

from .kernelapp import KernelApp
from .numbering import Side
from .runner import SERVER_PORT, Endpoint, Run

UNREACHABLE = Addresses("198.18.0.3", "2001:db8::3")
NOBODYS_MAC = "02:00:00:00:00:99"  # locally administered, owned by no interface


class ObserveRun(Run):
    def topology(self) -> Topology:
        mtu = IPV6_MTU if self.family == 6 else DEFAULT_MTU
        server_option = self.script.options.get("server")
        if server_option not in (None, "unreachable"):
            raise BadInput(f"{self.script.path}:1: option --server={server_option}: the only value is 'unreachable'")
        self.unreachable = server_option == "unreachable"
        if self.settings.loopback:
            if self.unreachable:
                raise BadInput(f"{self.script.path}:1: --server=unreachable needs the veth topology, not --loopback")
            return LoopbackTopology(mtu=mtu)
        return VethTopology(observe=True, mtu=mtu)

    def setup(self, topology: Topology) -> Wire:
        if self.settings.loopback:
            client_ns = server_ns = topology.kernel_ns
            client_address = server_address = topology.endpoint.address(self.family)
            capture = Wire(topology.kernel_ns, "lo")
        else:
            client_ns, server_ns = topology.lab_ns, topology.kernel_ns
            client_address = topology.lab.address(self.family)
            server_address = topology.kernel.address(self.family)
            capture = Wire(topology.lab_ns, topology.lab_if)
        connect_to = server_address
        if self.unreachable:
            connect_to = UNREACHABLE.address(self.family)
            self._blackhole(topology, connect_to)
        path = self.script.path
        self.ends = {
            "client": Endpoint("client", client_address, 0, Side(),
                               KernelApp(client_ns, self.family, (client_address, 0), (connect_to, SERVER_PORT), path),
                               Observer(client_ns), peer="server"),
            "server": Endpoint("server", connect_to, SERVER_PORT, Side(),
                               KernelApp(server_ns, self.family, (server_address, SERVER_PORT),
                                         (client_address, SERVER_PORT), path),
                               Observer(server_ns), peer="client"),
        }
        self.left = "client"
        return capture

    def _blackhole(self, topology: VethTopology, address: str) -> None:
        from pyroute2 import IPRoute

        with inside(topology.lab_ns), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=topology.lab_if)[0]
            ipr.neigh("add", dst=address, lladdr=NOBODYS_MAC, ifindex=index, state=NUD_PERMANENT)

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        if self.settings.loopback and not frame.outgoing:
            return None  # the second copy of a loopback frame
        if segment.sport == SERVER_PORT:
            return "server"
        if segment.dport == SERVER_PORT:
            return "client"
        return None
