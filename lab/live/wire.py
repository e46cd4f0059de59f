"""The lab's port on the wire: a layer-2 packet socket on one device of the run's topology.

The device is the lab's veth end (in observe mode on loopback, ``lo``, or
the sink of ``--server=unreachable``). The socket is opened inside the
device's namespace and bound to it, so Scapy's process-wide interface and
routing tables never come into play: the lab builds whole Ethernet frames,
writes them, and reads every frame that crosses the link. The kernel does
not loop a packet socket's own frames back to it, so ``send`` records them
itself: ``frames`` holds both directions, in order, which is what the
recorder keeps.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

from lab.live.clocks import realtime_offset
from netns import inside, start_blocking_signals

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_VNET_HDR = 15
VIRTIO_GSO_TCP = {4: 1, 6: 4}  # virtio_net_hdr gso_type: VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6
VIRTIO_NET_HDR = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
# How many bytes of a large packet tun puts in the skb's head (the rest goes to page fragments) when the
# writer gives no header length, as packetdrill does: SKB_MAX_HEAD(NET_SKB_PAD) in drivers/net/tun.c
# tun_get_user, a 4 KiB page less NET_SKB_PAD (64) and the aligned skb_shared_info (320) on x86-64. The
# receiving socket is charged the skb's truesize, and Linux derives the window it advertises from
# it (tcp_measure_rcv_mss's scaling_ratio = len / truesize); an AF_PACKET sender puts the vnet header's
# hdr_len bytes in the head, so the lab asks for tun's head and the kernel sees the same skb.
TUN_HEAD = 4096 - 64 - 320
ETHERNET_HEADER = 14
SNAPLEN = 65535 + 14
SO_TIMESTAMPNS = 35  # asm-generic/socket.h; the stamp is CLOCK_REALTIME
TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True)
class Frame:
    """One frame seen on the link: when, which way, and its bytes."""

    time: float  # monotonic clock: the kernel's receive stamp, or the moment before the lab sent it
    outgoing: bool  # True for frames the lab sent
    data: bytes


class Wire:
    """Send and receive raw frames on ``ifname`` inside namespace ``ns``."""

    def __init__(self, ns: str, ifname: str):
        # Protocol 0 at creation and ETH_P_ALL at bind: the kernel hooks the
        # socket in once, instead of hooking, unhooking (which waits for an RCU
        # grace period) and hooking again.
        with inside(ns):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self._sock.bind((ifname, ETH_P_ALL))
        self._ns, self._ifname = ns, ifname
        self._gso_sock: socket.socket | None = None
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setblocking(False)
        self.realtime_offset = realtime_offset()  # the run's one reading: its stamps, capture and cmsgs use it
        self.frames: list[Frame] = []

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close in the background (once): releasing a packet socket waits for an RCU
        grace period that the run has no reason to wait for. The closing
        threads start with SIGINT and SIGTERM blocked, so those reach the main thread
        (kernelapp's syscall workers say why)."""
        sockets = [sock for sock in (self._sock, self._gso_sock) if sock is not None and sock.fileno() >= 0]
        for sock in sockets:
            start_blocking_signals(threading.Thread(target=sock.close, name="close wire", daemon=True))

    def send(self, data: bytes) -> Frame:
        # Stamped before the write: the kernel may answer (and stamp its
        # answer) before send() returns to Python.
        frame = Frame(time.monotonic(), True, data)
        self._sock.send(data)
        self.frames.append(frame)
        return frame

    def send_gso(self, data: bytes, family: int, segment_size: int) -> Frame:
        """Send one TCP super-segment of ``segment_size`` pieces (packetdrill's --mss: a GSO packet, as its tun
        device writes them), laid out in memory as tun lays it out (TUN_HEAD). The link reads it back as an
        outgoing frame, so it is recorded there, not here."""
        if self._gso_sock is None:
            with inside(self._ns):
                self._gso_sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._gso_sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            self._gso_sock.bind((self._ifname, 0))
        frame = Frame(time.monotonic(), True, data)
        head = min(len(data), ETHERNET_HEADER + TUN_HEAD)
        header = VIRTIO_NET_HDR.pack(0, VIRTIO_GSO_TCP[family], head, segment_size, 0, 0)
        self._gso_sock.send(header + data)
        return frame

    def _arrival(self, ancillary) -> float:
        """When the kernel took the frame in (SO_TIMESTAMPNS), on the monotonic clock.

        The kernel's stamp, not the moment Python got round to reading it, so
        timing checks measure the kernel and not the lab's own latency.
        """
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                seconds, nanoseconds = TIMESPEC.unpack_from(payload)
                return seconds + nanoseconds / 1e9 - self.realtime_offset
        return time.monotonic()

    def receive(self, timeout: float) -> Frame | None:
        """The next frame from the link (either direction), or None after ``timeout``."""
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        if not ready:
            return None
        data, ancillary, _, address = self._sock.recvmsg(SNAPLEN, TIMESPEC.size + 64)
        frame = Frame(self._arrival(ancillary), address[2] == PACKET_OUTGOING, data)
        self.frames.append(frame)
        return frame
