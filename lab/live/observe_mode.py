"""Observe mode: a real client and a real server, traced over veth or loopback.

The client's sockets live in the lab namespace (its veth end holds
198.18.0.2 / 2001:db8::2), the server's in the kernel namespace; with
``--loopback`` both live in one namespace on 127.0.0.1 / ::1. A packet socket
opened before the first syscall sees both directions; on loopback every frame
passes it twice (out, then in), so only the outgoing copy is kept.

``--server=unreachable`` (an option line) points the client's connect() at
198.18.0.3 / 2001:db8::3, where frames go nowhere: over veth a permanent
neighbour entry names a MAC that no interface owns; on loopback the address is
routed into one end of a veth pair whose other end drops it (not ifb or
dummy, whose modules make devices in the host's namespace when they load),
and the capture watches that end. The SYNs leave and nothing ever answers.
"""

from __future__ import annotations

import socket

from lab.live.kernelapp import KernelApp
from lab.live.observer import Observer
from lab.live.ports import Endpoint, Port
from lab.live.topologies import topology_for
from lab.live.wire import Frame, Wire
from lab.script.events import SERVER_PORT
from lab.tcp.numbering import Side
from lab.tcp.packets import Segment
from netns import LoopbackTopology, Topology, VethTopology, inside
from netns.addresses import LAB_ADDRESSES, Addresses, check_allowed
from netns.rtnl import Rtnl

UNREACHABLE = Addresses("198.18.0.3", "2001:db8::3")
NOBODYS_MAC = "02:00:00:00:00:99"  # locally administered, owned by no interface


class ObservePort(Port):
    left = "client"

    def topology(self) -> Topology:
        self.unreachable = self.settings.option("server") == "unreachable"
        return topology_for(True, self.family, self.settings)

    def setup(self, topology: Topology, ports: range) -> Wire:
        if self.loopback:
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
            if self.loopback:
                capture.close()
                capture = Wire(topology.kernel_ns, self._sink(topology))
            else:
                self._blackhole(topology, connect_to)
        path = self.script.path
        # The client's ports are unknown before connect(): its namespace takes them from the run's lease.
        self.client_ports = ports
        topology.set_sysctl("net.ipv4.ip_local_port_range", f"{ports.start} {ports.stop - 1}", client_ns)
        self.ends = {
            "client": Endpoint("client", client_address, 0, Side(),
                               KernelApp(client_ns, self.family, (client_address, 0), (connect_to, SERVER_PORT), path),
                               Observer(client_ns), peer="server"),
            "server": Endpoint("server", connect_to, SERVER_PORT, Side(),
                               KernelApp(server_ns, self.family, (server_address, SERVER_PORT),
                                         (client_address, SERVER_PORT), path),
                               Observer(server_ns), peer="client"),
        }
        return capture

    def topology_reusable(self) -> bool:
        return not self.unreachable  # its blackhole or sink stays in the topology

    def _blackhole(self, topology: VethTopology, address: str) -> None:
        with inside(topology.lab_ns), Rtnl() as rtnl:
            rtnl.add_neighbour(socket.if_nametoindex(topology.lab_if), check_allowed(address), NOBODYS_MAC)

    def _sink(self, topology: LoopbackTopology) -> str:
        """A device in the loopback namespace that swallows the unreachable address's frames: one end of a
        veth pair, its frames addressed (a permanent neighbour entry, no ARP or ND) to a MAC that the other
        end does not own, which drops them. Not ifb or dummy: loading those modules makes ifb0/ifb1 or
        dummy0 in the host's namespace, which would stay after the run."""
        ifname, drain = topology.names.link("sink"), topology.names.link("drain")
        with inside(topology.kernel_ns), Rtnl() as rtnl:
            rtnl.add_veth(ifname, drain)
            for name in (drain, ifname):
                rtnl.set_link(socket.if_nametoindex(name), mtu=topology.mtu)
            index = socket.if_nametoindex(ifname)
            rtnl.add_address(index, check_allowed(LAB_ADDRESSES.ipv4), 32)
            rtnl.add_address(index, check_allowed(LAB_ADDRESSES.ipv6), 128, nodad=True)
            for address, prefix in ((UNREACHABLE.ipv4, 32), (UNREACHABLE.ipv6, 128)):
                rtnl.add_route(check_allowed(address), prefix, index)
                rtnl.add_neighbour(index, address, NOBODYS_MAC)
        return ifname

    def trace_ports(self) -> range:
        return self.client_ports

    def state_owner(self, port: int) -> str:
        return "client" if port == 0 or port in self.client_ports else "server"

    def recorded_frames(self, wire: Wire) -> list[Frame]:
        if self.loopback and not self.unreachable:
            return [frame for frame in wire.frames if frame.outgoing]  # each loopback frame once
        return wire.frames

    def sender_of(self, frame: Frame, segment: Segment) -> str | None:
        if self.loopback and not self.unreachable and not frame.outgoing:
            return None  # the second copy of a loopback frame
        if segment.sport == SERVER_PORT:
            return "server"
        if segment.dport == SERVER_PORT:
            return "client"
        return None
