"""Offloads off, so captured segments are wire-true.

With veth defaults the kernel hands over segments with unfilled checksums and
up to 64 KB long (TSO/GSO). Switching off tx checksumming, segmentation and
GRO (the ethtool ioctl, inside the namespace, as ``ethtool -K`` does) gives
MSS-sized segments with valid checksums, as a real NIC would put on the wire.
On ``lo`` tx checksumming cannot be switched off (the kernel marks it fixed):
loopback captures carry partial checksums, while segmentation is off there too.

The ioctl's structures (linux/ethtool.h) are packed with struct, as every
request of a run is (netns/netlink.py says why not with pyroute2).
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

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
SEGMENTATION_ON = ("tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-segmentation", "tx-tcp6-segmentation")

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS, ETHTOOL_GSSET_INFO, ETHTOOL_GFEATURES, ETHTOOL_SFEATURES = 0x1B, 0x37, 0x3A, 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32
IFREQ = struct.Struct("16sP")  # the name, then ifr_data: a pointer to the command's structure
SSET_INFO = struct.Struct("=IIQI")  # cmd, reserved, sset_mask, data[0]: the number of strings
GSTRINGS = struct.Struct("=III")  # cmd, string_set, len; then len * ETH_GSTRING_LEN bytes
FEATURES = struct.Struct("=II")  # cmd, size (blocks of 32 features)
GET_BLOCK = struct.Struct("=IIII")  # available, requested, active, never_changed
SET_BLOCK = struct.Struct("=II")  # valid, requested


_feature_names: tuple[str, ...] = ()  # the kernel's, by number: the same for every device, so read once


class _Device:
    """The ethtool ioctl on one interface of namespace ``ns``, through a socket made there."""

    def __init__(self, ns: str, ifname: str):
        self.name = ifname.encode()
        with inside(ns):
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc_info) -> None:
        self.socket.close()

    def call(self, command: bytes) -> bytes:
        """Run one ethtool command (its structure, filled in); its structure as the kernel left it."""
        buffer = ctypes.create_string_buffer(command, len(command))
        fcntl.ioctl(self.socket.fileno(), SIOCETHTOOL, IFREQ.pack(self.name, ctypes.addressof(buffer)))
        return buffer.raw

    def feature_names(self) -> tuple[str, ...]:
        """The kernel's feature names by number (netdev_features_strings), asked once per process."""
        global _feature_names
        if not _feature_names:
            info = self.call(SSET_INFO.pack(ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
            count = SSET_INFO.unpack(info)[3]
            data = self.call(GSTRINGS.pack(ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count) + bytes(count * ETH_GSTRING_LEN))
            names = data[GSTRINGS.size:]
            _feature_names = tuple(names[i:i + ETH_GSTRING_LEN].split(b"\0", 1)[0].decode()
                                   for i in range(0, len(names), ETH_GSTRING_LEN))
        return _feature_names

    def features(self, count: int) -> list[tuple[int, int, int, int]]:
        """Each block of 32 features: (available, requested, active, never changed) bit masks."""
        size = (count + 31) // 32
        data = self.call(FEATURES.pack(ETHTOOL_GFEATURES, size) + bytes(size * GET_BLOCK.size))
        return [GET_BLOCK.unpack_from(data, FEATURES.size + i * GET_BLOCK.size) for i in range(size)]

    def request(self, wanted: dict[int, bool], size: int) -> None:
        """Ask for feature number -> on/off (ETHTOOL_SFEATURES); the others stay as they are."""
        blocks = [[0, 0] for _ in range(size)]
        for number, on in wanted.items():
            block, bit = divmod(number, 32)
            blocks[block][0] |= 1 << bit
            if on:
                blocks[block][1] |= 1 << bit
        self.call(FEATURES.pack(ETHTOOL_SFEATURES, size) + b"".join(SET_BLOCK.pack(*block) for block in blocks))


def _set(ns: str, ifname: str, names: tuple[str, ...], on: bool) -> None:
    """Switch the named features of ``ifname`` in ``ns`` on or off, where the kernel lets them change."""
    with _Device(ns, ifname) as device:
        numbers = {name: number for number, name in enumerate(device.feature_names())}
        blocks = device.features(len(numbers))
        changeable = {numbers[name] for name in names if name in numbers
                      and blocks[numbers[name] // 32][0] >> (numbers[name] % 32) & 1}  # lo's checksumming: fixed
        if changeable:
            device.request(dict.fromkeys(changeable, on), len(blocks))


def disable_offloads(ns: str, ifname: str) -> None:
    """Switch off checksum and segmentation offloads of ``ifname`` in ``ns``."""
    _set(ns, ifname, WIRE_TRUE_OFF, False)


def enable_segmentation(ns: str, ifname: str) -> None:
    """Let ``ifname`` carry TCP super-segments whole (packetdrill's --mss: the lab writes GSO packets
    that must reach the peer as one packet, as through a tun device, not split on the way out)."""
    _set(ns, ifname, SEGMENTATION_ON, True)


def offload_state(ns: str, ifname: str) -> dict[str, bool]:
    """The offloads that matter for captures, as the kernel reports them now (active or not)."""
    with _Device(ns, ifname) as device:
        names = device.feature_names()
        blocks = device.features(len(names))
    return {name: bool(blocks[number // 32][2] >> (number % 32) & 1)
            for number, name in enumerate(names) if name in REPORTED}
