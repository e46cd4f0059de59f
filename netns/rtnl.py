"""The rtnetlink requests a topology is built with: veth pairs, links, addresses, neighbours, routes.

Each request is what ``ip`` would send for the same change (linux/rtnetlink.h,
linux/if_link.h, linux/neighbour.h), packed with struct (netns/netlink.py
says why not with pyroute2). Requests act in the network namespace of the
calling thread (``netns.namespace.inside``), like the socket they go through.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from netns.netlink import (
    HEADER,
    NETLINK_ROUTE,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NetlinkSocket,
    attribute,
    attributes,
    nested,
)

RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_GETROUTE = 16, 18, 20, 24, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWLINKPROP = 28, 29, 30, 108
IFINFOMSG = struct.Struct("=BxHiII")  # family, device type, index, flags, flags changed
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
NDMSG = struct.Struct("=BxxxiHBB")  # family, index, state, flags, type
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst length, src length, tos, table, protocol, scope, type, flags
U8, U32 = struct.Struct("=B"), struct.Struct("=I")
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_OPERSTATE, IFLA_LINKINFO = 1, 3, 4, 16, 18
IFLA_NET_NS_FD, IFLA_PROP_LIST, IFLA_ALT_IFNAME = 28, 52, 53
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFF_UP = 0x1
IF_OPER_UP = 6
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
RTA_DST, RTA_OIF, RTA_METRICS = 1, 4, 8
RTAX_MTU, RTAX_ADVMSS = 2, 8
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, RTN_LOCAL = 254, 4, 0, 1, 2


@dataclass(frozen=True)
class Link:
    """A link as the kernel reports it."""

    index: int
    mtu: int
    mac: str
    up: bool  # its operational state is UP: it carries frames


@dataclass(frozen=True)
class Neighbour:
    family: int
    index: int
    state: int
    address: str


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _packed(address: str) -> bytes:
    return socket.inet_pton(family_of(address), address)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _mac(data: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in data)


class Rtnl(NetlinkSocket):
    """An rtnetlink socket in the calling thread's namespace; NetlinkRefused when the kernel refuses."""

    def __init__(self):
        super().__init__(NETLINK_ROUTE)

    def add_veth(self, name: str, peer: str, ns_fd: int | None = None, peer_ns_fd: int | None = None) -> None:
        """A veth pair ``name`` - ``peer``, each end made directly in the namespace its fd names (if any)."""
        def end(ifname: str, fd: int | None) -> bytes:
            return attribute(IFLA_IFNAME, _name(ifname)) + (b"" if fd is None else attribute(IFLA_NET_NS_FD, U32.pack(fd)))

        peer_info = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + end(peer, peer_ns_fd)
        body = (IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + end(name, ns_fd)
                + nested(IFLA_LINKINFO, attribute(IFLA_INFO_KIND, b"veth"),
                         nested(IFLA_INFO_DATA, nested(VETH_INFO_PEER, peer_info))))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth pair {name} - {peer}")

    def set_link(self, index: int, mtu: int | None = None) -> None:
        """Bring link ``index`` up (it may be up already), at ``mtu`` if given."""
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
        if mtu is not None:
            body += attribute(IFLA_MTU, U32.pack(mtu))
        self.request(RTM_NEWLINK, 0, body, f"set link {index} up")

    def add_altname(self, index: int, altname: str) -> None:
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0) + nested(
            IFLA_PROP_LIST, attribute(IFLA_ALT_IFNAME, _name(altname)))
        self.request(RTM_NEWLINKPROP, NLM_F_CREATE | NLM_F_EXCL, body, f"add altname {altname}")

    def link(self, index: int) -> Link:
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
        whole = self.get(RTM_GETLINK, body, f"get link {index}")
        found = attributes(whole, HEADER.size + IFINFOMSG.size)
        return Link(index, U32.unpack(found[IFLA_MTU])[0], _mac(found.get(IFLA_ADDRESS, b"")),
                    U8.unpack(found[IFLA_OPERSTATE])[0] == IF_OPER_UP)

    def add_address(self, index: int, address: str, prefixlen: int, nodad: bool = False) -> None:
        flags = IFA_F_NODAD if nodad else 0
        packed = _packed(address)
        body = (IFADDRMSG.pack(family_of(address), prefixlen, flags, 0, index) + attribute(IFA_LOCAL, packed)
                + attribute(IFA_ADDRESS, packed) + attribute(IFA_FLAGS, U32.pack(flags)))
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}/{prefixlen}")

    def delivers_locally(self, address: str) -> bool:
        """Whether the namespace's routing delivers a packet for ``address`` to itself (``ip route get``
        answers a local route): for an IPv6 address, only once the kernel's addrconf work has inserted
        its host route, which it does after RTM_NEWADDR has returned."""
        family = family_of(address)
        body = RTMSG.pack(family, 32 if family == socket.AF_INET else 128, 0, 0, 0, 0, 0, 0, 0) + attribute(
            RTA_DST, _packed(address))
        whole = self.get(RTM_GETROUTE, body, f"get route {address}")
        return RTMSG.unpack_from(whole, HEADER.size)[7] == RTN_LOCAL

    def add_neighbour(self, index: int, address: str, mac: str) -> None:
        """A permanent neighbour entry: the kernel sends to ``address`` at ``mac`` without ARP or ND."""
        body = (NDMSG.pack(family_of(address), index, NUD_PERMANENT, 0, 0) + attribute(NDA_DST, _packed(address))
                + attribute(NDA_LLADDR, bytes.fromhex(mac.replace(":", ""))))
        self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, body, f"add neighbour {address}")

    def neighbours(self) -> list[Neighbour]:
        """Every neighbour entry of the namespace that has an address."""
        found = []
        for whole in self.dump(RTM_GETNEIGH, NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), "list neighbours"):
            family, index, state, _, _ = NDMSG.unpack_from(whole, HEADER.size)
            destination = attributes(whole, HEADER.size + NDMSG.size).get(NDA_DST)
            if destination and family in (socket.AF_INET, socket.AF_INET6):
                found.append(Neighbour(family, index, state, socket.inet_ntop(family, destination)))
        return found

    def delete_neighbour(self, entry: Neighbour) -> None:
        body = NDMSG.pack(entry.family, entry.index, 0, 0, 0) + attribute(NDA_DST, _packed(entry.address))
        self.request(RTM_DELNEIGH, 0, body, f"delete neighbour {entry.address}")

    def add_route(self, address: str, prefixlen: int, index: int, mtu: int | None = None,
                  advmss: int | None = None, replace: bool = False) -> None:
        """A route to ``address/prefixlen`` out of link ``index`` (no gateway), with an MTU and MSS if given."""
        metrics = b"".join(attribute(kind, U32.pack(value)) for kind, value in ((RTAX_MTU, mtu), (RTAX_ADVMSS, advmss))
                           if value is not None)
        body = (RTMSG.pack(family_of(address), prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0)
                + attribute(RTA_DST, _packed(address)) + attribute(RTA_OIF, U32.pack(index))
                + (nested(RTA_METRICS, metrics) if metrics else b""))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL), body,
                     f"{'replace' if replace else 'add'} route {address}/{prefixlen}")
