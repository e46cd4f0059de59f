"""TCP Fast Open cookies as this kernel makes them, for the lab's own addresses.

A server's cookie is SipHash-2-4 over the SYN's source and destination
addresses (net/ipv4/tcp_fastopen.c), keyed by ``net.ipv4.tcp_fastopen_key``
(four 32-bit words, stored little-endian). Scripts written for packetdrill's
addresses name the cookie through a define (``FO TFO_COOKIE``); the lab
computes the one the kernel will expect for the addresses it really uses.
"""

from __future__ import annotations

import ipaddress
import struct

MASK = 2**64 - 1


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & MASK


def _round(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & MASK
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & MASK
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & MASK
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & MASK
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under a 16-byte ``key`` (the reference algorithm)."""
    k0, k1 = struct.unpack("<QQ", key)
    v0, v1, v2, v3 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    tail = len(data) % 8
    blocks = data[: len(data) - tail]
    for (word,) in struct.iter_unpack("<Q", blocks):
        v3 ^= word
        v0, v1, v2, v3 = _round(*_round(v0, v1, v2, v3))
        v0 ^= word
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[len(data) - tail:], "little")
    v3 ^= last
    v0, v1, v2, v3 = _round(*_round(v0, v1, v2, v3))
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def parse_key(text: str) -> bytes:
    """``a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4`` (the sysctl's form) as the kernel's 16 key bytes."""
    words = [int(part, 16) for part in text.split(",")[0].split("-")]
    if len(words) != 4:
        raise ValueError(f"a Fast Open key is four hex words joined by '-', not {text!r}")
    return struct.pack("<4I", *words)


def cookie(key: str, source: str, destination: str) -> str:
    """The cookie (16 hex digits, as scripts write it) for a SYN from ``source`` to ``destination``."""
    data = ipaddress.ip_address(source).packed + ipaddress.ip_address(destination).packed
    return struct.pack("<Q", siphash24(parse_key(key), data)).hex()
