"""What ``tcplab doctor`` checks: can the lab run here, and with which defaults.

It builds one real veth topology as drive-mode runs build it (altname, path
MTU routes) and reads back the namespaced TCP sysctls a fresh namespace starts
with and the offload state of the veth ends. Nothing is assumed from the
host's values.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from lab.errors import LabError
from lab import privileges
from lab.live.punctual import realtime_allowed

TCP_SYSCTLS = (
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_orphan_retries",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_reuse_delay",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_syn_linear_timeouts",
    "net.ipv4.tcp_congestion_control",
)


@dataclass
class Report:
    """The doctor's findings; ``problem`` set means the lab cannot run."""

    privileges: str = ""
    kernel: str = field(default_factory=platform.release)
    python: str = field(default_factory=platform.python_version)
    sysctls: dict[str, str] = field(default_factory=dict)
    offloads: dict[str, dict[str, bool]] = field(default_factory=dict)
    states: str = ""  # where runs' TCP states will come from: tracepoints, or why only sock_diag samples
    container: str | None = None  # the runtime, as it marks its containers; None on a host or VM
    lacks: list = field(default_factory=list)  # lab.live.container.Lack: what is missing here, fatal first
    problem: str = ""


def examine() -> Report:
    """Check privileges, build a topology, read its defaults; never raises LabError."""
    from lab.live.topologies import LINK_MTU, TUN_ALTNAME
    from netns import NamespaceError, SysctlError, VethTopology
    from netns.netlink import NetlinkRefused
    from netns.offload import offload_state

    from lab.live import container

    report = Report(container=container.engine())
    fatal = [lack for lack in container.lacks() if lack.fatal]
    if fatal:  # say what is missing and how to grant it, rather than what the first failing call said
        report.lacks, report.problem = fatal, fatal[0].what
        return report
    loss_problem = None
    try:
        report.privileges = privileges.ensure_lab_privileges()
        if report.privileges == "rootless":
            report.privileges = f"rootless (uid {privileges.host_uid} mapped to root in a user namespace)"
        with VethTopology(kernel_altname=TUN_ALTNAME, link_mtu=LINK_MTU) as topology:
            for key in TCP_SYSCTLS:
                try:
                    report.sysctls[key] = topology.sysctl(key)
                except SysctlError:
                    report.sysctls[key] = "(not on this kernel)"
            report.offloads = {
                "kernel end": offload_state(topology.kernel_ns, topology.kernel_if),
                "lab end": offload_state(topology.lab_ns, topology.lab_if),
            }
            loss_problem = _loss_problem(topology.kernel_ns)
        tracing_problem = _tracing_problem()
        report.states = (f"sampled with sock_diag ({tracing_problem})" if tracing_problem else
                         "traced (sock:inet_sock_set_state, in a trace instance of each process's own)")
        report.lacks = container.lacks(tracing_problem, realtime_allowed(), loss_problem)
    except LabError as error:
        report.problem = str(error)
    except NamespaceError as error:
        report.problem = f"{error.strerror}; run with sudo, or in a container with CAP_SYS_ADMIN and CAP_NET_ADMIN"
    except NetlinkRefused as error:
        report.problem = f"the kernel refused to build the lab's veth topology ({error.strerror})"
    return report


def _tracing_problem() -> str | None:
    """Why runs cannot read the kernel's tracepoints (lab/live/tracepoints.py), tried for real; None if they can."""
    from netns.tracefs import TracingUnavailable, process_instance

    try:
        process_instance()
    except TracingUnavailable as error:
        return str(error)
    return None


def _loss_problem(ns: str) -> str | None:
    """Why a loss rule and a hold-back queue cannot be made in namespace ``ns``, tried for real; None if they can."""
    from netns.loss import LinkLoss, LossRule

    try:
        with LinkLoss() as loss:
            loss.add(ns, LossRule(tag=1, flags=0x02, dport=1, delay=0.1))  # a SYN to port 1, held back
    except Exception as error:  # noqa: BLE001 - any refusal here means: no lossy links in this kernel's namespaces
        words = error.args[-1] if error.args and isinstance(error.args[-1], str) else str(error)  # netlink: (2, text)
        return words or type(error).__name__
    return None
