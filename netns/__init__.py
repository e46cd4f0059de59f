"""Network topologies for tcplab, built and torn down with pyroute2 only."""

from .addresses import KERNEL, LAB, LOOPBACK, Endpoint, check_allowed
from .namespace import NamespaceError, SysctlError, inside, read_sysctl, write_sysctl
from .signals import Terminated, deferred_signals, raise_on_interrupts
from .topology import IPV6_MTU, LoopbackTopology, Topology, VethTopology

__all__ = [
    "IPV6_MTU",
    "KERNEL",
    "LAB",
    "LOOPBACK",
    "Endpoint",
    "LoopbackTopology",
    "NamespaceError",
    "SysctlError",
    "Terminated",
    "Topology",
    "VethTopology",
    "check_allowed",
    "deferred_signals",
    "inside",
    "raise_on_interrupts",
    "read_sysctl",
    "write_sysctl",
]
