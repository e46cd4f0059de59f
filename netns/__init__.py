"""Network topologies for tcplab: namespaces, links and the kernel's sockets, built, read and torn down.

A run's own requests are packed here with struct (netns/netlink.py says
why); pyroute2 makes the rarer ones (tc, nf_tables). Names
are imported on first use (PEP 562): commands that never build a topology
(``list``, ``explain``, offline ``verify``) load none of it.
"""

import importlib

_WHERE = {
    "KERNEL_ADDRESSES": "addresses", "LAB_ADDRESSES": "addresses", "LOOPBACK_ADDRESSES": "addresses",
    "Addresses": "addresses",
    "check_allowed": "addresses",
    "NamespaceError": "namespace", "SysctlError": "namespace", "inside": "namespace", "read_sysctl": "namespace",
    "write_sysctl": "namespace",
    "Terminated": "signals", "deferred_signals": "signals", "raise_on_interrupts": "signals",
    "start_blocking_signals": "signals",
    "IPV6_MTU": "topology", "LoopbackTopology": "topology", "Topology": "topology", "VethTopology": "topology",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'netns' has no attribute {name!r}")
    return getattr(importlib.import_module(f"netns.{_WHERE[name]}"), name)
