"""Topologies: the namespaces a lab run needs, built on entry, removed on exit.

``VethTopology`` (drive mode): namespaces "kernel" and "lab" joined by a veth
pair whose ends are created directly inside their namespaces. The kernel end
holds 198.18.0.1/24 and 2001:db8::1/64; the lab end holds no address, and the
kernel side reaches the lab's 198.18.0.2 / 2001:db8::2 through permanent
neighbour entries. The lab namespace's own stack therefore never answers a
segment (no stray RSTs); the lab plays its endpoint at layer 2.

``link_mtu`` runs the veth at a larger MTU than the path MTU ``mtu`` (see
``_path_mtu_routes``). ``kernel_altname`` gives the kernel end a second name: scripts written for
packetdrill's tun device (``tc qdisc add dev tun0 ...`` in defaults.sh) then
find it, while its real name still says tcplab.

``VethTopology(observe=True)``: the lab end holds 198.18.0.2 / 2001:db8::2 so a
real client socket can live there; neighbours are permanent both ways, so no
ARP or ND frame shows up in a capture.

``LoopbackTopology``: one namespace with ``lo`` up, for 127.0.0.1 / ::1.

``reset()`` makes a topology as fresh as a new one, or says it cannot, so
that a batch may keep it for its next run (lab/live/kept.py).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time

from netns import namespace
from netns.addresses import (
    EPHEMERAL_PORTS,
    KERNEL_ADDRESSES,
    LAB_ADDRESSES,
    LOOPBACK_ADDRESSES,
    Addresses,
    check_allowed,
)
from netns.names import TopologyNames
from netns.netlink import NetlinkRefused
from netns.offload import disable_offloads
from netns.rtnl import Rtnl
from netns.signals import deferred_signals
from netns.sockets import abort_tcp_sockets, tcp_sockets_left
from netns.tcp_metrics import flush_tcp_metrics

NUD_LEARNT = 0x3F  # INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED: what neighbour discovery made
LINK_READY_WAIT = 5.0  # seconds a veth end may take to carry frames (an address to be delivered) before giving up
DEFAULT_MTU = 1500
IPV6_MTU = 1520  # as the kernel selftests' packetdrill runner: mss 1460 holds for IPv6 too


class Topology:
    """Namespaces made by this object; removed on exit, also on errors and signals."""

    kernel_ns: str  # the namespace whose kernel the lab examines
    lab_ns: str  # the namespace the lab's own endpoint lives in

    def __init__(self, sysctls: dict[str, object] | None = None):
        self.names = TopologyNames.allocate()
        self.sysctls = dict(sysctls or {})
        self.namespaces: list[str] = []
        self.changed_sysctls: dict[tuple[str, str], str] = {}  # (namespace, key) -> value as built

    def __enter__(self):
        try:
            with deferred_signals():
                self._build()
                if self.sysctls:
                    namespace.write_sysctls(self.kernel_ns, self.sysctls)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove every namespace this topology made, aborting the TCP sockets left in it first (an orphan
        would otherwise keep the namespace alive in the kernel for minutes: netns/sockets.py); idempotent."""
        with deferred_signals():
            while self.namespaces:
                name = self.namespaces.pop()
                with contextlib.suppress(OSError):
                    abort_tcp_sockets(name)
                namespace.remove(name)

    def _create_namespace(self, name: str) -> None:
        namespace.create(name)
        self.namespaces.append(name)
        namespace.write_sysctls(name, self.built_sysctls)

    built_sysctls = {  # what every namespace of the topology gets as it is made
        # Its own ephemeral ports, below every run's lease (netns/addresses.py).
        "net.ipv4.ip_local_port_range": f"{EPHEMERAL_PORTS.start} {EPHEMERAL_PORTS.stop - 1}",
    }

    def _build(self) -> None:
        raise NotImplementedError

    @property
    def kind(self) -> tuple:
        """What makes two topologies interchangeable: a run may take over a kept one of its own kind."""
        return (type(self).__name__, tuple(sorted(self.sysctls.items())))

    def set_sysctl(self, key: str, value: object, ns: str | None = None) -> None:
        """Set a net.* sysctl in ``ns`` (the kernel's namespace by default), noting its value as built."""
        ns = ns or self.kernel_ns
        if (ns, key) not in self.changed_sysctls:
            self.changed_sysctls[(ns, key)] = namespace.read_sysctl(ns, key)
        namespace.write_sysctl(ns, key, value)

    def reset(self) -> bool:
        """Bring the kernel state a run leaves back to a new topology's; False when some of it stays.

        Ends every TCP socket (SOCK_DESTROY; TIME_WAIT only since Linux 6.11, so on older kernels a run
        that leaves one gets False), puts back the sysctls ``set_sysctl`` changed, and empties the
        metrics cache and the neighbour entries the kernel learnt. What a reset does not undo (a qdisc,
        nf_tables rules, a route's MTU, offloads, whatever a shell line did) the caller must not have
        done: lab/live/kept.py keeps only topologies whose run changed none of it.
        """
        with deferred_signals():
            if not self._end_sockets():
                return False
            self._restore_sysctls()
            for ns in self.namespaces:
                flush_tcp_metrics(ns)
                self._forget_learnt_neighbours(ns)
        return True

    def _end_sockets(self) -> bool:
        """Abort every TCP socket of the topology; whether none is left."""
        for ns in self.namespaces:
            abort_tcp_sockets(ns)
        return not any(tcp_sockets_left(ns) for ns in self.namespaces)

    def _restore_sysctls(self) -> None:
        for (ns, key), value in self.changed_sysctls.items():
            namespace.write_sysctl(ns, key, value)
        self.changed_sysctls.clear()

    def sysctl(self, key: str) -> str:
        return namespace.read_sysctl(self.kernel_ns, key)

    def limit_link(self, rate_bps: int, burst_bytes: int) -> None:
        """Make the link between the endpoints a token bucket (netns/shaping.py)."""
        raise NotImplementedError

    def _forget_learnt_neighbours(self, ns: str) -> None:
        """Remove the neighbour entries the kernel learnt itself (a FAILED one for an unreachable address
        would answer the next run's connect() at once). The permanent ones the topology made stay, and so do
        NOARP ones (multicast, loopback), which the kernel keeps for every namespace."""
        with namespace.inside(ns), Rtnl() as rtnl:
            for entry in rtnl.neighbours():
                if entry.state & NUD_LEARNT:
                    try:
                        rtnl.delete_neighbour(entry)
                    except NetlinkRefused as error:
                        if error.errno != errno.ENOENT:  # gone meanwhile: the kernel's own garbage collection
                            raise


def _link_up(rtnl: Rtnl, ifname: str, mtu: int | None = None) -> int:
    index = socket.if_nametoindex(ifname)  # the calling thread's namespace, as the socket's
    rtnl.set_link(index, mtu=mtu)
    return index


def _add_addresses(rtnl: Rtnl, index: int, endpoint: Addresses) -> None:
    rtnl.add_address(index, check_allowed(endpoint.ipv4), endpoint.prefix4)
    rtnl.add_address(index, check_allowed(endpoint.ipv6), endpoint.prefix6, nodad=True)
    _wait_until_delivered(rtnl, endpoint.ipv6)


class LinkNotReady(OSError):
    """A veth end or an address the kernel did not switch on in time: the machine, not the user's input."""


def _wait_until_delivered(rtnl: Rtnl, address: str) -> None:
    """Return once the namespace delivers what is sent to ``address`` (an IPv6 address of its own).

    The kernel inserts an IPv6 address's host route from its addrconf work
    queue (net/ipv6/addrconf.c: addrconf_dad_work, addrconf_dad_completed,
    __ipv6_ifa_notify, ip6_ins_rt), after RTM_NEWADDR has returned, with
    IFA_F_NODAD too. Until that work item runs, a SYN to the address is
    dropped unanswered. On a quiet machine it runs within 30 us; on a busy
    one it waits for its CPU and the RTNL lock. IPv4's local route is
    inserted within the request itself.
    """
    _wait_for(lambda: rtnl.delivers_locally(address), f"the kernel did not take {address} into use within "
              f"{LINK_READY_WAIT:g} s (its addrconf work never ran: is the machine overloaded?); try again")


def _wait_until_carrying(ns: str, ifname: str) -> None:
    """Return once the veth end carries frames: its operational state is UP.

    The end brought up first gets its carrier when its peer comes up, and its
    transmit queue is switched on only later, by the kernel's link watch (a
    work item that needs the RTNL lock, which other namespaces being built or
    removed may hold). Until then it drops whatever is sent, a client's SYN
    included, and that connect() hangs. The link watch sets the operational
    state just before it switches the queue on.
    """
    with namespace.inside(ns), Rtnl() as rtnl:
        index = socket.if_nametoindex(ifname)
        _wait_for(lambda: rtnl.link(index).up, f"the veth end {ifname} was still not carrying frames after "
                  f"{LINK_READY_WAIT:g} s (the kernel's link watch is stalled: is the machine overloaded?); try again")


def _wait_for(ready, why_not: str) -> None:
    """Poll ``ready()`` until it holds; LinkNotReady saying ``why_not`` after LINK_READY_WAIT."""
    deadline = time.monotonic() + LINK_READY_WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise LinkNotReady(why_not)
        time.sleep(0.0002)


def _add_permanent_neighbours(rtnl: Rtnl, index: int, endpoint: Addresses, lladdr: str) -> None:
    for address in (endpoint.ipv4, endpoint.ipv6):
        rtnl.add_neighbour(index, check_allowed(address), lladdr)


# For the veth ends, set before they exist: no link-local address (so no DAD
# probe at a random moment in the first second) and MLD reports sent at once
# rather than repeated at random within a second. Nothing then crosses the
# link but the lab's traffic, which a slow link (shaping.py) must not share.
QUIET_IPV6 = {
    "net.ipv6.conf.default.addr_gen_mode": 1,
    "net.ipv6.conf.default.mldv1_unsolicited_report_interval": 0,
    "net.ipv6.conf.default.mldv2_unsolicited_report_interval": 0,
}


class VethTopology(Topology):
    """lab <-veth-> kernel; see the module docstring for the two variants."""

    built_sysctls = {**Topology.built_sysctls, **QUIET_IPV6}

    def __init__(
        self,
        *,
        observe: bool = False,
        mtu: int = DEFAULT_MTU,
        sysctls: dict[str, object] | None = None,
        kernel_altname: str | None = None,
        link_mtu: int | None = None,
    ):
        super().__init__(sysctls)
        self.kernel_altname = kernel_altname
        self.link_mtu = link_mtu
        self.kernel_ns = self.names.netns("kernel")
        self.lab_ns = self.names.netns("lab")
        self.observe = observe
        self.mtu = mtu
        self.kernel = KERNEL_ADDRESSES
        self.lab = LAB_ADDRESSES
        self.kernel_if = self.names.link("kernel")
        self.lab_if = self.names.link("lab")
        self.kernel_mac = ""
        self.lab_mac = ""

    def _build(self) -> None:
        kernel_ns, lab_ns = self.kernel_ns, self.lab_ns
        self._create_namespace(kernel_ns)
        self._create_namespace(lab_ns)
        with namespace.opened(kernel_ns) as kernel_fd, namespace.opened(lab_ns) as lab_fd, Rtnl() as rtnl:
            rtnl.add_veth(self.kernel_if, self.lab_if, kernel_fd, lab_fd)
        if not self.observe:
            # The lab plays its endpoint at layer 2: its own stack stays silent,
            # IPv6 included (no MLD, no router solicitations, no ICMPv6 errors).
            namespace.write_sysctl(lab_ns, "net.ipv6.conf.all.disable_ipv6", 1)
            namespace.write_sysctl(lab_ns, "net.ipv6.conf.default.disable_ipv6", 1)
        lab_addresses = self.lab if self.observe else None
        self.lab_mac = self._configure(lab_ns, self.lab_if, lab_addresses)
        self.kernel_mac = self._configure(kernel_ns, self.kernel_if, self.kernel, (self.lab, self.lab_mac))
        if self.kernel_altname or self.link_mtu:
            with namespace.inside(kernel_ns), Rtnl() as rtnl:
                index = socket.if_nametoindex(self.kernel_if)
                if self.kernel_altname:
                    rtnl.add_altname(index, self.kernel_altname)
                if self.link_mtu:
                    self._path_mtu_routes(rtnl, index)
        if self.observe:
            with namespace.inside(lab_ns), Rtnl() as rtnl:
                _add_permanent_neighbours(rtnl, socket.if_nametoindex(self.lab_if), self.kernel, self.kernel_mac)
        disable_offloads(kernel_ns, self.kernel_if)
        disable_offloads(lab_ns, self.lab_if)
        _wait_until_carrying(lab_ns, self.lab_if)  # up first: its queue waits for the link watch
        _wait_until_carrying(kernel_ns, self.kernel_if)

    @property
    def kind(self) -> tuple:
        return (*super().kind, self.observe, self.mtu, self.link_mtu, self.kernel_altname)

    def limit_link(self, rate_bps: int, burst_bytes: int) -> None:
        """A bucket on each veth end: one per direction."""
        from netns.shaping import (
            limit_rate,  # tc, through pyroute2: only where a script shapes its link
        )

        limit_rate(self.lab_ns, self.lab_if, rate_bps, burst_bytes)
        limit_rate(self.kernel_ns, self.kernel_if, rate_bps, burst_bytes)

    def follow_link_mtu(self) -> None:
        """Take an MTU a script set on the kernel end (``ip link set dev tun0 mtu 9000``) as the path MTU.

        The routes get it; the link goes back to ``link_mtu``, so the lab may
        still inject segments larger than the path MTU.
        """
        if not self.link_mtu:
            return
        with namespace.inside(self.kernel_ns), Rtnl() as rtnl:
            index = socket.if_nametoindex(self.kernel_if)
            mtu = rtnl.link(index).mtu
            if mtu == self.link_mtu:
                return
            self.mtu = mtu
            rtnl.set_link(index, mtu=self.link_mtu)
            self._path_mtu_routes(rtnl, index, replace=True)

    def _path_mtu_routes(self, rtnl: Rtnl, index: int, replace: bool = False) -> None:
        """Host routes to the lab's addresses that carry the path MTU and MSS.

        The links run at ``link_mtu`` so the lab can inject segments larger
        than the path MTU (as packetdrill's tun device allows); the kernel
        still sends and advertises as if the link had ``mtu``.
        """
        for address, prefix, header in ((self.lab.ipv4, 32, 40), (self.lab.ipv6, 128, 60)):
            rtnl.add_route(check_allowed(address), prefix, index, mtu=self.mtu, advmss=self.mtu - header,
                           replace=replace)

    def _configure(
        self,
        ns: str,
        ifname: str,
        addresses: Addresses | None,
        neighbour: tuple[Addresses, str] | None = None,
    ) -> str:
        """Bring ``lo`` and the veth end up, add addresses and permanent
        neighbour entries; return the end's MAC address."""
        with namespace.inside(ns), Rtnl() as rtnl:
            _link_up(rtnl, "lo")
            index = _link_up(rtnl, ifname, self.link_mtu or self.mtu)
            if addresses is not None:
                _add_addresses(rtnl, index, addresses)
            if neighbour is not None:
                _add_permanent_neighbours(rtnl, index, *neighbour)
            return rtnl.link(index).mac


class LoopbackTopology(Topology):
    """One namespace with ``lo`` up: kernel-to-kernel traffic on 127.0.0.1 / ::1.

    With ``mtu``, lo runs at that MTU with segmentation offloads off, so a
    trace over loopback has the same segments as one over the veth.
    """

    endpoint = LOOPBACK_ADDRESSES

    def __init__(self, sysctls: dict[str, object] | None = None, mtu: int | None = None):
        super().__init__(sysctls)
        self.kernel_ns = self.lab_ns = self.names.netns("loop")
        self.mtu = mtu

    @property
    def kind(self) -> tuple:
        return (*super().kind, self.mtu)

    def limit_link(self, rate_bps: int, burst_bytes: int) -> None:
        """One bucket on lo: both directions share it."""
        from netns.shaping import limit_rate

        limit_rate(self.kernel_ns, "lo", rate_bps, burst_bytes)

    def _build(self) -> None:
        self._create_namespace(self.kernel_ns)
        with namespace.inside(self.kernel_ns), Rtnl() as rtnl:
            _link_up(rtnl, "lo", self.mtu)
        if self.mtu is not None:  # a loopback that behaves like the veth: MTU-sized, offloads off
            disable_offloads(self.kernel_ns, "lo")
