"""What one observation costs the timeline: each kind a script line or the ladder asks for, timed alone.

``python -m bench.observations [N]`` builds a loopback namespace with a
listener and one connection (IPv4 and IPv6) and times, N times each:

- a state line whose socket is there (sock_diag lookup found: ESTABLISHED),
- a state line whose socket is gone (lookup, no such socket: CLOSED),
- the same at a listener's port (the kernel's lookup ends at the listener),
- a ladder sample (both endpoints of a connection, as the runner takes it),
- a ``%{ }%`` block's tcp_info and SO_MEMINFO read,
- for comparison, the whole-table dump a miss used to fall back on.

The figures depend on the kernel build (the dump walks the established
table), so the kernel release is printed with them.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from collections.abc import Callable

from lab.privileges import ensure_lab_privileges

PORT = 8080
LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def timed(action: Callable[[], object], count: int) -> str:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return (f"median {statistics.median(samples):6.3f} ms  p99 {samples[int(0.99 * (count - 1))]:6.3f} ms  "
            f"max {samples[-1]:6.3f} ms")


def measure(family: int, count: int) -> None:
    from lab.judge.tcpinfo import tcp_info
    from lab.live.observer import Observer
    from netns import LoopbackTopology, inside

    address = LOOPBACK[family]
    with LoopbackTopology() as topology:
        with inside(topology.kernel_ns):
            listener = socket.create_server((address, PORT), family=family)
            client = socket.create_connection((address, PORT), timeout=2)
        server = listener.accept()[0]
        observer = Observer(topology.kernel_ns)
        client_port = client.getsockname()[1]
        gone = client_port + 1  # no connection has this port
        both = ((client_port, PORT), (PORT, client_port))
        kinds = {
            "state line, socket there": lambda: observer.connection(family, client_port, PORT, (address, address)),
            "state line, socket gone": lambda: observer.connection(family, gone, PORT, (address, address)),
            "state line, gone, at a listener": lambda: observer.connection(family, PORT, gone, (address, address)),
            "ladder sample (two endpoints)": lambda: [observer.connection(family, local, remote, (address, address))
                                                      for local, remote in both],
            "tcp_info block": lambda: tcp_info(client),
            "whole-table dump (not used in a run)": lambda: observer.sockets(family),
        }
        try:
            for name, action in kinds.items():
                print(f"  IPv{6 if family == socket.AF_INET6 else 4} {name:<38} {timed(action, count)}  (n={count})")
        finally:
            observer.close()
            for sock in (client, server, listener):
                sock.close()


def report(count: int) -> None:
    ensure_lab_privileges()
    print(f"cost of one observation, kernel {os.uname().release}:")
    for family in (socket.AF_INET, socket.AF_INET6):
        measure(family, count)


def main() -> None:
    report(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)


if __name__ == "__main__":
    main()
