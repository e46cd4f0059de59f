"""The lab's address plan, and the guard that keeps every address inside it; and its port plan.

Only 198.18.0.0/15 (RFC 2544 benchmarking) and 2001:db8::/32 (documentation)
are used in namespaces, plus loopback; nothing the lab configures can route
to a real network, and no namespace ever gets a default route.

Ports: each run leases a block of LEASED_PORTS for the ports it traces
(lab/live/port_lease.py), and every namespace the lab makes takes its own
ephemeral ports below them, so that no socket of one run carries a port of
another's lease.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ALLOWED = (
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def check_allowed(address: str) -> str:
    """Return ``address`` if it lies in the lab's plan; raise ValueError if not."""
    ip = ipaddress.ip_address(address)
    if not any(ip in net for net in ALLOWED):
        raise ValueError(f"{address} is outside the lab's address plan (198.18.0.0/15, 2001:db8::/32)")
    return address


@dataclass(frozen=True)
class Addresses:
    """One side's addresses: IPv4 and IPv6, with their prefix lengths."""

    ipv4: str
    ipv6: str
    prefix4: int = 24
    prefix6: int = 64

    def address(self, family: int) -> str:
        return self.ipv6 if family == 6 else self.ipv4


LEASED_PORTS = range(40000, 60000)
EPHEMERAL_PORTS = range(32768, LEASED_PORTS.start)  # net.ipv4.ip_local_port_range of every namespace

KERNEL_ADDRESSES = Addresses("198.18.0.1", "2001:db8::1")
LAB_ADDRESSES = Addresses("198.18.0.2", "2001:db8::2")
LOOPBACK_ADDRESSES = Addresses("127.0.0.1", "::1", 8, 128)
