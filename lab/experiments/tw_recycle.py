"""tw-recycle: the sysctl an article recommends, looked for in a fresh namespace.

net.ipv4.tcp_tw_recycle was removed in Linux 4.12 (it dropped SYNs from
clients behind NAT, whose timestamps are not monotonic across hosts). The
experiment reads the kernel namespace's /proc/sys/net/ipv4 and reports what
is there instead: tcp_tw_reuse for outgoing connections (exercise tw-reuse),
tcp_max_tw_buckets, and the acceptance of a new SYN by a TIME_WAIT socket
(exercise time-wait-new-syn).
"""

from __future__ import annotations

import time

from lab.engine.trace import Failure, RunResult
from netns import LoopbackTopology, SysctlError

GONE = "net.ipv4.tcp_tw_recycle"
INSTEAD = ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay", "net.ipv4.tcp_max_tw_buckets",
           "net.ipv4.tcp_fin_timeout")


def run(experiment, family: int, settings) -> RunResult:
    started = time.monotonic()
    failure, notes = None, []
    with LoopbackTopology() as topology:
        try:
            value = topology.sysctl(GONE)
            failure = Failure(0, f"{GONE} exists on this kernel (= {value}); the exercise expects it removed")
        except SysctlError:
            notes.append(f"{GONE}: no such sysctl (removed in Linux 4.12)")
        for key in INSTEAD:
            try:
                notes.append(f"{key} = {topology.sysctl(key)}")
            except SysctlError:
                notes.append(f"{key}: not on this kernel")
    return RunResult(experiment.path, family, failure, None, time.monotonic() - started, notes=notes)
