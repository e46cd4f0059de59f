"""Which topology a run builds, by its script's mode and family.

One source for the ports that build it (lab/live/drive.py,
lab/live/observe_mode.py) and for ``tcplab run``, which builds it ahead,
while the engine imports (lab/live/kept.py ``built_ahead``): the two must
agree on its kind, or the run would build another.
"""

from __future__ import annotations

from lab.script.settings import Settings
from netns import IPV6_MTU, LoopbackTopology, Topology, VethTopology
from netns.topology import DEFAULT_MTU

TUN_ALTNAME = "tun0"  # packetdrill's tun device: scripts' tc lines and the selftests' defaults.sh name it
LINK_MTU = 65535  # the drive link carries what the lab injects, larger than the path MTU (netns/topology.py)


def topology_for(observe: bool, family: int, settings: Settings) -> Topology:
    """The topology (not yet built) of a run in observe or drive mode, IPv4 or IPv6, with these settings
    (``Settings.for_script`` resolved: a drive script's --mtu sets its path MTU)."""
    default_mtu = IPV6_MTU if family == 6 else DEFAULT_MTU
    if observe:
        return LoopbackTopology(mtu=default_mtu) if settings.loopback else VethTopology(observe=True, mtu=default_mtu)
    return VethTopology(mtu=settings.option("mtu") or default_mtu, kernel_altname=TUN_ALTNAME, link_mtu=LINK_MTU)
