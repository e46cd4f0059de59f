"""tw-recycle: the sysctl an article recommends, looked for in a fresh namespace.

net.ipv4.tcp_tw_recycle was removed in Linux 4.12 (it dropped SYNs from
clients behind NAT, whose timestamps are not monotonic across hosts). The
experiment reads the kernel namespace's /proc/sys/net/ipv4 and reports what
is there instead: tcp_tw_reuse for outgoing connections (exercise tw-reuse),
tcp_max_tw_buckets, and the acceptance of a new SYN by a TIME_WAIT socket
(exercise time-wait-new-syn). It also looks for a setting of the MSL the
articles speak of: Linux has none (TIME_WAIT is TCP_TIMEWAIT_LEN, 60 s).
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.judge.trace import RunResult
from netns import LoopbackTopology, SysctlError, inside

from lab.course.experiments import failed_check

SYSCTLS = Path("/proc/sys")
MSL = "msl"  # what a sysctl setting the MSL would be named after

GONE = "net.ipv4.tcp_tw_recycle"
INSTEAD = ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay", "net.ipv4.tcp_max_tw_buckets",
           "net.ipv4.tcp_fin_timeout")


def msl_settings(ns: str) -> list[str]:
    """The sysctls of the namespace's TCP/IP whose name mentions MSL (none on Linux)."""
    with inside(ns):
        found = [str(path.relative_to(SYSCTLS)) for path in SYSCTLS.glob("net/ipv[46]/**/*")
                 if MSL in path.name.lower()]
    return sorted(found)


def run(experiment, family: int, settings) -> RunResult:
    started = time.monotonic()
    failure, notes = None, []
    with LoopbackTopology() as topology:
        try:
            value = topology.sysctl(GONE)
            failure = failed_check(__file__, "gone",  # #gone
                                   f"{GONE} exists on this kernel (= {value}); the exercise expects it removed")
        except SysctlError:
            notes.append(f"{GONE}: no such sysctl (removed in Linux 4.12)")
        msl = msl_settings(topology.kernel_ns)
        if failure is None and msl:
            failure = failed_check(__file__, "no-msl", f"this kernel has MSL settings: {', '.join(msl)}")  # #no-msl
        elif failure is None:
            notes.append("no sysctl under net.ipv4 or net.ipv6 names an MSL: TIME_WAIT's length is not a setting")
        for key in INSTEAD:
            try:
                notes.append(f"{key} = {topology.sysctl(key)}")
            except SysctlError:
                notes.append(f"{key}: not on this kernel")
    return RunResult(experiment.path, family, failure, None, time.monotonic() - started, notes=notes)
