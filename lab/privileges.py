"""Privileges: run as root, or rootless inside a user namespace of our own.

Not root: where unprivileged user namespaces are allowed, the process moves
itself into a new user + mount + network namespace (mapped to root there),
makes its mounts private and puts a tmpfs on /run, so named namespaces under
/run/netns, veths and namespaced sysctls all work and vanish with the process.
This is done in-process at start-up, before any thread exists (unshare of a
user namespace requires a single-threaded caller), which is what re-executing
under ``unshare --user --map-root-user --net --mount`` would do, minus the exec.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading

from lab.errors import EnvironmentProblem

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_mode: str | None = None
host_uid = os.getuid()  # the user tcplab was started as, before any user namespace


def _fail(what: str) -> EnvironmentProblem:
    err = ctypes.get_errno()
    from lab.live.container import GRANTS, seccomp_filtered

    if err == errno.EPERM and seccomp_filtered():
        return EnvironmentProblem(f"tcplab needs root or user namespaces; {what}: a seccomp filter (a container "
                                  f"runtime's default profile) refuses it; {GRANTS['userns-seccomp']}")
    return EnvironmentProblem(f"tcplab needs root or user namespaces; {what}: {os.strerror(err)}; {GRANTS['userns']}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def enter_rootless() -> None:
    """Become root of a fresh user namespace with private mounts and /run."""
    uid, gid = host_uid, os.getgid()
    if threading.active_count() > 1:
        raise EnvironmentProblem("rootless mode must start before any thread; run tcplab from its CLI")
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0:
        raise _fail("unshare of a user namespace failed")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _fail("making mounts private failed")
    if _libc.mount(b"tmpfs", b"/run", b"tmpfs", 0, b"mode=0755") != 0:
        raise _fail("mounting a private /run failed")


def ensure_lab_privileges() -> str:
    """Make namespaces creatable; return "root" or "rootless". Idempotent."""
    global _mode
    if _mode is None:
        if os.geteuid() == 0:
            _mode = "root"
        else:
            enter_rootless()
            _mode = "rootless"
    return _mode
