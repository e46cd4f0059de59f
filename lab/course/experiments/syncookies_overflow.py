"""syncookies-overflow: tcp_syncookies=1 (the default) when the SYN queue overflows.

The article recommends net.ipv4.tcp_syncookies = 1 against SYN floods. On
Linux 1 means "cookies only when the listener's SYN queue is full"; 2 (the
syncookies exercise) means always. The lab floods a listener whose backlog is
1 with SYNs from many source ports and looks at what the kernel keeps:

- a fresh namespace has tcp_syncookies = 1;
- every SYN gets a SYN-ACK, but only the first few leave a request socket
  (SYN_RECV in sock_diag); the rest were answered with cookies, and the
  namespace's TcpExt SyncookiesSent counter says how many;
- the ACK of a cookie SYN-ACK (ack = cookie + 1) alone creates the
  connection, and accept() returns it;
- with tcp_syncookies = 0 the same flood gets no SYN-ACK beyond the queue:
  the SYNs are dropped.
"""

from __future__ import annotations

import random
import socket
import time

from lab.live.port_lease import leased_ports
from lab.live.recorder import write_pcapng
from lab.judge.trace import Failure, RunResult
from lab.live.observer import Observer, counter
from lab.tcp.packets import Segment, build_frame, parse_frame, preload_scapy, text_to_flags
from lab.script.events import SERVER_PORT
from lab.live.wire import Wire
from netns import VethTopology, inside

from lab.course.experiments import failed_check

FLOOD = 8  # SYNs, each from its own source port
BACKLOG = 1
DEFAULT = "1"  # tcp_syncookies in a fresh namespace: cookies only when the queue overflows
MOD = 2**32


def syncookies_sent(ns: str) -> int:
    """The namespace's TcpExt SyncookiesSent counter (/proc/net/netstat read inside it)."""
    with inside(ns), open("/proc/thread-self/net/netstat", "rb") as handle:
        return counter(handle.read(), "TcpExt", "SyncookiesSent")


class Flooder:
    """SYNs from many ports to the kernel's listener; the SYN-ACKs that come back."""

    def __init__(self, topology: VethTopology, family: int, wire: Wire):
        self.topology, self.wire, self.family = topology, wire, family
        self.lab = topology.lab.address(family)
        self.kernel = topology.kernel.address(family)
        self.comments: dict[int, str] = {}

    def send(self, flags: str, port: int, seq: int, ack: int, comment: str) -> None:
        segment = Segment(self.lab, self.kernel, port, SERVER_PORT, text_to_flags(flags), seq % MOD, ack % MOD, 65535,
                          options=(("MSS", 1460),) if flags == "S" else ())
        frame = self.wire.send(build_frame(self.topology.lab_mac, self.topology.kernel_mac, segment))
        self.comments[id(frame)] = comment

    def flood(self, ports: list[int]) -> dict[int, int]:
        """Send a SYN from each port; return port -> the kernel's ISN for each SYN-ACK within 0.3 s."""
        isns = {port: random.getrandbits(32) for port in ports}
        for port in ports:
            self.send("S", port, isns[port], 0, f"syncookies-overflow: SYN from port {port}")
        answered: dict[int, int] = {}
        deadline = time.monotonic() + 0.3
        while (frame := self.wire.receive(deadline - time.monotonic())) is not None:
            segment = parse_frame(frame.data)
            if segment and not frame.outgoing and segment.dport in isns and segment.flag_text == "S.":
                if segment.ack == (isns[segment.dport] + 1) % MOD and segment.dport not in answered:
                    answered[segment.dport] = segment.seq
                    self.comments[id(frame)] = f"syncookies-overflow: SYN-ACK to port {segment.dport}"
        self.isns = isns
        return answered


def _listener(topology: VethTopology, family: int) -> socket.socket:
    with inside(topology.kernel_ns):
        listener = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the first flood's connection is in TIME_WAIT
    listener.bind((topology.kernel.address(family), SERVER_PORT))
    listener.listen(BACKLOG)
    return listener


def _flood_with_cookies(topology, family, flooder, notes, ports: list[int]) -> None:
    default = topology.sysctl("net.ipv4.tcp_syncookies")
    if default != DEFAULT:
        raise failed_check(__file__, "default-1", f"tcp_syncookies is {default} in a fresh namespace, expected {DEFAULT}")  # #default-1
    observer = Observer(topology.kernel_ns)
    kind = socket.AF_INET6 if family == 6 else socket.AF_INET
    try:
        with _listener(topology, family) as listener:
            before = syncookies_sent(topology.kernel_ns)
            answered = flooder.flood(ports)
            if len(answered) != FLOOD:
                raise failed_check(__file__, "all-answered",  # #all-answered
                                   f"{len(answered)} of {FLOOD} SYNs got a SYN-ACK with tcp_syncookies=1")
            queued = {info.remote[1] for info in observer.sockets(kind) if info.state == "SYN_RECV"}
            cookies = [port for port in ports if port not in queued]
            sent = syncookies_sent(topology.kernel_ns) - before
            if not queued or len(queued) > BACKLOG + 1 or sent != len(cookies) or not cookies:
                raise failed_check(__file__, "overflow-cookies",  # #overflow-cookies
                                   f"{len(queued)} request sockets in SYN_RECV, {len(cookies)} SYN-ACKs without one, "
                                   f"SyncookiesSent +{sent}; expected at most {BACKLOG + 1} queued and a cookie "
                                   "for each of the others")
            notes.append(f"tcp_syncookies=1, listen backlog {BACKLOG}, {FLOOD} SYNs: all answered; "
                         f"{len(queued)} kept as request sockets (SYN_RECV), {len(cookies)} answered with a cookie "
                         f"(TcpExt SyncookiesSent +{sent}), no state kept for them")
            port = cookies[-1]
            flooder.send(".", port, flooder.isns[port] + 1, answered[port] + 1,
                         f"syncookies-overflow: ACK of the cookie from port {port}")
            state = observer.wait_for_state(kind, SERVER_PORT, port, "ESTABLISHED", timeout=0.5)
            if state != "ESTABLISHED":
                raise failed_check(__file__, "cookie-ack", f"the ACK of a cookie left the connection {state}")  # #cookie-ack
            listener.settimeout(0.5)
            connection, address = listener.accept()
            connection.close()
            notes.append(f"the ACK of the cookie from port {port} alone made an ESTABLISHED socket; accept() "
                         f"returned it ({address[0]} port {address[1]})")
    finally:
        observer.close()


def _flood_without_cookies(topology, family, flooder, notes, ports: list[int]) -> None:
    topology.set_sysctl("net.ipv4.tcp_syncookies", 0)
    with _listener(topology, family):
        answered = flooder.flood(ports)
        if len(answered) > BACKLOG + 1:
            raise failed_check(__file__, "no-cookies-drop",  # #no-cookies-drop
                               f"with tcp_syncookies=0, {len(answered)} of {FLOOD} SYNs got a SYN-ACK; "
                               f"expected at most {BACKLOG + 1} (the queue), the rest dropped")
        notes.append(f"tcp_syncookies=0, the same flood: {len(answered)} SYN-ACKs, "
                     f"{FLOOD - len(answered)} SYNs dropped without an answer")


def run(experiment, family: int, settings) -> RunResult:
    preload_scapy()
    started = time.monotonic()
    failure, notes = None, []
    with leased_ports() as lease, VethTopology() as topology, Wire(topology.lab_ns, topology.lab_if) as wire:
        flooder = Flooder(topology, family, wire)
        try:
            ports = random.sample(lease, 2 * FLOOD)  # each flood from ports of its own
            _flood_with_cookies(topology, family, flooder, notes, ports[:FLOOD])
            _flood_without_cookies(topology, family, flooder, notes, ports[FLOOD:])
        except Failure as error:
            failure = error
        pcap = settings.pcap
        if pcap:
            write_pcapng(pcap, wire.frames, flooder.comments, wire.realtime_offset)
    return RunResult(experiment.path, family, failure, pcap, time.monotonic() - started, notes=notes)
