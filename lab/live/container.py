"""What a container withholds from the lab: each missing piece, what it costs, and the flag that grants it.

CI jobs mostly run in containers, and a container runtime's defaults take away
exactly what the lab needs: capabilities (CAP_SYS_ADMIN and CAP_NET_ADMIN to
make namespaces and veths), a writable /proc/sys (Docker and Podman mount it
read-only), user namespaces for a non-root user (their default seccomp profile
refuses ``unshare(CLONE_NEWUSER)``), tracefs, real-time scheduling. ``tcplab
doctor`` reads each from the process's own view (/proc/self/status,
/proc/self/mountinfo, a trial in a child process) rather than guessing from
the runtime's name, so the same checks hold on a VM, in Docker, Podman or a
Kubernetes pod. docs/containers.md has the recipes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYS_NICE = 12, 13, 21, 23
NEEDED_CAPABILITIES = {CAP_SYS_ADMIN: "SYS_ADMIN", CAP_NET_ADMIN: "NET_ADMIN", CAP_NET_RAW: "NET_RAW"}
CLONE_NEWUSER = 0x10000000
SECCOMP_FILTER = 2  # /proc/self/status "Seccomp:" when a filter is installed

# The one place that says how each runtime grants a piece (docs/containers.md explains each).
GRANTS = {
    "proc-sys": "Docker: --security-opt systempaths=unconfined; Podman: --security-opt unmask=/proc/sys; "
                "Kubernetes: securityContext.procMount: Unmasked (or privileged: true)",
    "userns": "run with sudo, or allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0; on Ubuntu "
              "also kernel.apparmor_restrict_unprivileged_userns=0)",
    "userns-seccomp": "run as root with CAP_SYS_ADMIN and CAP_NET_ADMIN (Docker/Podman: --user 0 "
                      "--cap-add=SYS_ADMIN --cap-add=NET_ADMIN; Kubernetes: runAsUser: 0 and those capabilities), or "
                      "Docker/Podman: --security-opt seccomp=unconfined; Kubernetes: "
                      "securityContext.seccompProfile.type: Unconfined",
    "run": "Docker/Podman: --tmpfs /run; Kubernetes: an emptyDir volume (medium: Memory) mounted at /run",
    "tracefs": "Docker/Podman: -v /sys/kernel/tracing:/sys/kernel/tracing (with CAP_SYS_ADMIN), or --privileged; "
               "Kubernetes: a hostPath volume for /sys/kernel/tracing",
    "nf_tables": "load the modules on the host (modprobe nf_tables nfnetlink_queue nfnetlink_log): a container "
                 "cannot load kernel modules",
    "realtime": "Docker/Podman: --cap-add=SYS_NICE; Kubernetes: securityContext.capabilities.add: [SYS_NICE]",
}


@dataclass(frozen=True)
class Lack:
    """One piece the lab does not have here: what, what it costs, how to grant it; fatal: no run can work."""

    what: str
    costs: str
    grant: str
    fatal: bool


def engine(root: Path = Path("/")) -> str | None:
    """The container runtime this process runs under, as the runtimes mark it; None on a host or a VM."""
    try:
        if "virtme" in (root / "proc/cmdline").read_text():  # a virtme-ng guest sees the host's files, marks included
            return None
    except OSError:
        pass
    if (root / "run/.containerenv").exists():
        return "podman"
    if (root / ".dockerenv").exists():
        return "docker"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if os.environ.get("container"):  # systemd's convention: lxc, systemd-nspawn, podman
        return os.environ["container"]
    try:
        cgroups = (root / "proc/1/cgroup").read_text()
    except OSError:
        return None
    for mark, name in (("kubepods", "kubernetes"), ("libpod", "podman"), ("docker", "docker"), ("lxc", "lxc")):
        if mark in cgroups:
            return name
    return None


def _status(path: Path = Path("/proc/self/status")) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in path.read_text().splitlines() if ":\t" in line)


def capability_grant(names: list[str]) -> str:
    """The flags that grant the capabilities ``names`` (CAP_SYS_ADMIN, ...): Docker keeps NET_RAW by default,
    Podman 4 does not."""
    bare = [name.removeprefix("CAP_") for name in names]
    return (f"Docker/Podman: {' '.join(f'--cap-add={name}' for name in bare)}; Kubernetes: "
            f"securityContext.capabilities.add: [{', '.join(bare)}]")


def missing_capabilities(status: dict[str, str] | None = None) -> list[str]:
    """The capabilities the lab needs that this (root) process does not have in effect, by name."""
    effective = int((status or _status())["CapEff"], 16)
    return [f"CAP_{name}" for bit, name in NEEDED_CAPABILITIES.items() if not effective >> bit & 1]


def has_capability(bit: int, status: dict[str, str] | None = None) -> bool:
    return bool(int((status or _status())["CapEff"], 16) >> bit & 1)


def seccomp_filtered(status: dict[str, str] | None = None) -> bool:
    return (status or _status()).get("Seccomp", "0").strip() == str(SECCOMP_FILTER)


def read_only(mount_point: str, mountinfo: str | None = None) -> bool:
    """Whether the mount at ``mount_point`` (the last one there) is read-only, from /proc/self/mountinfo."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    options = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == mount_point:
            options = fields[5].split(",")
    return options is not None and "ro" in options


def user_namespace_refusal() -> str | None:
    """Why this process cannot make a user namespace, tried in a child; None when it can."""
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(CLONE_NEWUSER) == 0 else ctypes.get_errno())
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return None if code == 0 else os.strerror(code) if code in errno.errorcode else f"exit {code}"


def lacks(tracing_problem: str | None = None, realtime: bool = True, loss_problem: str | None = None) -> list[Lack]:
    """Every piece missing here, fatal ones first. The doctor tries the last three for real: why tracefs
    cannot be used, whether SCHED_FIFO is allowed, why a loss rule (nf_tables, NFQUEUE) could not be made;
    the rest is read from this process's own view."""
    found = []
    status = _status()
    if os.geteuid() == 0:
        missing = missing_capabilities(status)
        if missing:
            found.append(Lack(f"capabilities {', '.join(missing)} are not in effect",
                              "every run: no namespace, veth or packet socket can be made",
                              capability_grant(missing), True))
    else:
        refusal = user_namespace_refusal()
        if refusal and seccomp_filtered(status) and refusal == os.strerror(errno.EPERM):
            found.append(Lack("not root, and a seccomp filter (a container runtime's default profile) refuses "
                              "unshare(CLONE_NEWUSER)", "every run: rootless mode needs a user namespace",
                              GRANTS["userns-seccomp"], True))
        elif refusal:
            found.append(Lack(f"not root, and unshare(CLONE_NEWUSER) fails: {refusal}",
                              "every run: rootless mode needs a user namespace", GRANTS["userns"], True))
    if read_only("/proc/sys"):
        found.append(Lack("/proc/sys is mounted read-only (as Docker and Podman mount it)",
                          "every run: the lab sets its namespaces' sysctls there (IPv6 address mode, the "
                          "scripts' sysctl lines)", GRANTS["proc-sys"], True))
    if os.geteuid() == 0 and not os.access("/run", os.W_OK):  # rootless mounts a /run of its own
        found.append(Lack("/run is not writable (a read-only root file system)",
                          "every run: named network namespaces live in /run/netns", GRANTS["run"], True))
    if tracing_problem:
        found.append(Lack(f"no tracefs ({tracing_problem})",
                          "state changes come from sock_diag samples, not the kernel's tracepoints: their times "
                          "are bounds, not moments", GRANTS["tracefs"], False))
    if not realtime:
        found.append(Lack("no real-time scheduling (SCHED_FIFO refused)",
                          "timelines run at normal priority: on a busy machine the lab is late more often (its "
                          "lateness is reported as such, never as the kernel's)", GRANTS["realtime"], False))
    if loss_problem:
        needing = exercises_needing_loss()
        found.append(Lack(f"no nf_tables or NFQUEUE in this kernel's namespaces ({loss_problem})",
                          f"scripts with `link lose` or `link delay` lines: {len(needing)} exercises "
                          f"({', '.join(needing)})", GRANTS["nf_tables"], False))
    return sorted(found, key=lambda lack: not lack.fatal)


_LINK_LINE = re.compile(r"^\s*\+?[\d.~+]*\s*(\w+\s+)?link\s+(lose|delay)\b", re.MULTILINE)


def exercises_needing_loss() -> list[str]:
    """The catalogue's exercises whose scripts lose or hold back segments on the link (nf_tables, NFQUEUE)."""
    from lab.course.catalogue import exercises

    return [exercise.name for exercise in exercises() if not exercise.experiment
            and _LINK_LINE.search(exercise.script.read_text(encoding="utf-8"))]
