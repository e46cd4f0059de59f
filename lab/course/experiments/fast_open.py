"""fast-open: a SYN that carries data (TCP Fast Open, RFC 7413).

The articles say a SYN cannot carry data. With Fast Open it does. Two real
endpoints in their namespaces (the client in the lab namespace, the server
in the kernel namespace), and a packet capture on the link:

- first connection: the client's sendto(MSG_FASTOPEN) has no cookie yet, so
  its SYN carries an empty Fast Open option (a cookie request) and no data;
  the server's SYN-ACK brings a cookie, and the data follows the handshake;
- second connection: the SYN carries the cookie and the data, and the
  SYN-ACK acknowledges both (ack = ISN + 1 + length), and the server's
  application reads the data.

The server needs net.ipv4.tcp_fastopen's server bit (set to 3 in its
namespace); the client namespace keeps the default, 1 (client only).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from lab.live.recorder import write_pcapng
from lab.judge.trace import Failure, RunResult
from lab.tcp.packets import parse_frame, preload_scapy
from lab.script.events import SERVER_PORT
from lab.live.wire import Wire
from netns import VethTopology, inside, read_sysctl, start_blocking_signals

from lab.course.experiments import failed_check

SERVER_FASTOPEN = 3  # net.ipv4.tcp_fastopen in the server's namespace: client and server bits
TCP_FASTOPEN = 23  # setsockopt level IPPROTO_TCP: the server's Fast Open queue length
MSG_FASTOPEN = 0x20000000
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
MOD = 2**32


def _fast_open_option(segment) -> bytes | None:
    """The Fast Open option's cookie (b"" for a cookie request), or None when absent.

    Scapy calls option kind 34 TFO and decodes an 8-byte cookie as two integers.
    """
    for name, value in segment.options:
        if name == "TFO":
            return struct.pack("!II", *value) if isinstance(value, tuple) else bytes(value or b"")
    return None


class Capture:
    """The link's frames in a background thread, until stopped."""

    def __init__(self, wire: Wire):
        self.wire, self.stop = wire, threading.Event()
        self.thread = threading.Thread(target=self._loop, name="fast-open capture", daemon=True)
        start_blocking_signals(self.thread)

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wire.receive(0.05)

    def segments(self, client_port: int):
        self.stop.set()
        self.thread.join()
        self.stop.clear()
        found = [(frame, parse_frame(frame.data)) for frame in self.wire.frames]
        self.thread = threading.Thread(target=self._loop, name="fast-open capture", daemon=True)
        start_blocking_signals(self.thread)
        return [(f, s) for f, s in found if s and client_port in (s.sport, s.dport)]


def _connection(topology, family, listener, capture):
    """One client connection with sendto(MSG_FASTOPEN); the server reads; (client port, segments, data read)."""
    kind = socket.AF_INET6 if family == 6 else socket.AF_INET
    with inside(topology.lab_ns):
        client = socket.socket(kind, socket.SOCK_STREAM)
    with client:
        client.sendto(REQUEST, MSG_FASTOPEN, (topology.kernel.address(family), SERVER_PORT))
        port = client.getsockname()[1]
        server, _ = listener.accept()
        with server:
            server.settimeout(1.0)
            data = server.recv(1000)
        time.sleep(0.05)
    return port, capture.segments(port), data


def _check(topology, family, listener, capture, comments, notes) -> None:
    client_setting = read_sysctl(topology.lab_ns, "net.ipv4.tcp_fastopen")
    port, segments, data = _connection(topology, family, listener, capture)
    syn = next((s for _, s in segments if s.flag_text == "S"), None)
    synack = next((s for _, s in segments if s.flag_text == "S."), None)
    if syn is None or synack is None or _fast_open_option(syn) != b"" or syn.length:
        raise failed_check(__file__, "cookie-request",  # #cookie-request
                           "the first SYN should carry an empty Fast Open option (a cookie request) and no data")
    cookie = _fast_open_option(synack)
    if not cookie:
        raise failed_check(__file__, "cookie", "the first SYN-ACK carries no Fast Open cookie")  # #cookie
    if data != REQUEST:
        raise Failure(0, f"the server read {data!r} on the first connection")
    comments.update({id(f): f"fast-open: first connection, {s.flag_text} len {s.length}" for f, s in segments})
    notes.append(f"client tcp_fastopen = {client_setting} (the default); first connection: SYN with a cookie "
                 f"request and no data, SYN-ACK with a {len(cookie)}-byte cookie, data after the handshake")

    port, segments, data = _connection(topology, family, listener, capture)
    syn = next((s for _, s in segments if s.flag_text == "S"), None)
    synack = next((s for _, s in segments if s.flag_text == "S."), None)
    if syn is None or syn.payload != REQUEST or _fast_open_option(syn) != cookie:
        raise failed_check(__file__, "syn-data",  # #syn-data
                           f"the second SYN should carry the cookie and the {len(REQUEST)} bytes of data")
    if synack is None or synack.ack != (syn.seq + 1 + len(REQUEST)) % MOD or data != REQUEST:
        raise failed_check(__file__, "data-acked",  # #data-acked
                           "the SYN-ACK should acknowledge the SYN and its data (ack = ISN + 1 + length), "
                           "and the server read them")
    comments.update({id(f): f"fast-open: second connection, {s.flag_text} len {s.length}" for f, s in segments})
    notes.append(f"second connection: the SYN carries the cookie and {syn.length} bytes of data; the SYN-ACK "
                 f"acknowledges ISN + 1 + {syn.length}; the server's recv() returned the data")


def run(experiment, family: int, settings) -> RunResult:
    preload_scapy()
    started = time.monotonic()
    failure, notes, comments = None, [], {}
    with VethTopology(observe=True, sysctls={"net.ipv4.tcp_fastopen": SERVER_FASTOPEN}) as topology, \
            Wire(topology.lab_ns, topology.lab_if) as wire:
        kind = socket.AF_INET6 if family == 6 else socket.AF_INET
        with inside(topology.kernel_ns):
            listener = socket.socket(kind, socket.SOCK_STREAM)
        capture = Capture(wire)
        try:
            with listener:
                listener.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 5)
                listener.bind((topology.kernel.address(family), SERVER_PORT))
                listener.listen(5)
                listener.settimeout(1.0)
                _check(topology, family, listener, capture, comments, notes)
        except Failure as error:
            failure = error
        finally:
            capture.stop.set()
            capture.thread.join()
        pcap = settings.pcap
        if pcap:
            write_pcapng(pcap, wire.frames, comments, wire.realtime_offset)
    return RunResult(experiment.path, family, failure, pcap, time.monotonic() - started, notes=notes)
