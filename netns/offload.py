"""Offloads off, so captured segments are wire-true.

With veth defaults the kernel hands over segments with unfilled checksums and
up to 64 KB long (TSO/GSO). Switching off tx checksumming, segmentation and
GRO (pyroute2's ethtool ioctl, inside the namespace) gives MSS-sized segments
with valid checksums, as a real NIC would put on the wire. On ``lo`` tx checksumming cannot be
switched off (the kernel marks it fixed): loopback captures carry partial
checksums, while segmentation is off there too.
"""

from __future__ import annotations

from pyroute2.ethtool import Ethtool

from netns.namespace import inside

WIRE_TRUE_OFF = (
    "tx-checksum-ip-generic",
    "tx-checksum-ipv4",
    "tx-checksum-ipv6",
    "tx-tcp-segmentation",
    "tx-tcp6-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-generic-segmentation",
    "rx-gro",
)
REPORTED = ("tx-checksum-ip-generic", "tx-tcp-segmentation", "tx-generic-segmentation", "rx-gro")


def disable_offloads(ns: str, ifname: str) -> None:
    """Switch off checksum and segmentation offloads of ``ifname`` in ``ns``."""
    with inside(ns), Ethtool() as ethtool:
        features = ethtool.get_features(ifname)
        for name in WIRE_TRUE_OFF:
            feature = features.features.get(name)
            if feature is not None and feature.available:  # lo's checksumming is fixed on
                feature.enable = False
        ethtool.set_features(ifname, features)


def offload_state(ns: str, ifname: str) -> dict[str, bool]:
    """The offloads that matter for captures, as the kernel reports them now."""
    with inside(ns), Ethtool() as ethtool:
        features = ethtool.get_features(ifname).features
    return {name: features[name].enable for name in REPORTED if name in features}


SEGMENTATION_ON = ("tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-segmentation", "tx-tcp6-segmentation")


def enable_segmentation(ns: str, ifname: str) -> None:
    """Let ``ifname`` carry TCP super-segments whole (packetdrill's --mss: the lab writes GSO packets
    that must reach the peer as one packet, as through a tun device, not split on the way out)."""
    with inside(ns), Ethtool() as ethtool:
        features = ethtool.get_features(ifname)
        for name in SEGMENTATION_ON:
            feature = features.features.get(name)
            if feature is not None and feature.available:
                feature.enable = True
        ethtool.set_features(ifname, features)
