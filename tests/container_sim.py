"""Run a command under one thing a container runtime does by default, simulated on a host, as root.

``python tests/container_sim.py CONDITION -- COMMAND...``, CONDITION one of:

- ``seccomp-userns``: a seccomp filter that refuses ``unshare(CLONE_NEWUSER)``
  with EPERM, as Docker's and Podman's default profiles do for a process
  without CAP_SYS_ADMIN (the command can then drop to nobody with setpriv);
- ``ro-proc-sys``: a private mount namespace where /proc/sys is a read-only
  bind mount, as the runtimes mount it;
- ``ro-run``: a private mount namespace where /run is read-only, as with a
  read-only root file system (``--read-only``) and no tmpfs on /run;
- ``no-tracefs``: a private mount namespace where /sys/kernel/tracing and
  /sys/kernel/debug are empty, and a seccomp filter refusing any ``mount``
  without flags (a tracefs mount; the lab's own bind mounts of namespaces carry
  MS_BIND), as AppArmor's default container profile refuses mounts.

Nothing outlives the command: the mount namespace and the filter are the
command's own. x86-64 system call numbers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR_MOUNT, NR_UNSHARE = 165, 272
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
LD_ABS_W, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06
ARCH_OFFSET, NR_OFFSET = 4, 0


def arg_offset(index: int) -> int:
    """Where the low 32 bits of system call argument ``index`` sit in struct seccomp_data."""
    return 16 + 8 * index


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def install_filter(program: list[tuple[int, int, int, int]]) -> None:
    """Install a classic-BPF seccomp filter: (code, jt, jf, k) instructions."""
    raw = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(raw)

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Program(len(program), ctypes.addressof(buffer))
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def refuse(number: int, test: tuple[int, int, int]) -> list[tuple[int, int, int, int]]:
    """A filter refusing system call ``number`` with EPERM when ``test`` (op, argument offset, k) holds."""
    op, offset, k = test
    return [
        (LD_ABS_W, 0, 0, ARCH_OFFSET), (JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        (LD_ABS_W, 0, 0, NR_OFFSET), (JEQ_K, 0, 3, number),
        (LD_ABS_W, 0, 0, offset), (op, 0, 1, k),
        (RET_K, 0, 0, RET_ERRNO | errno.EPERM),
        (RET_K, 0, 0, RET_ALLOW),
    ]


def private_mounts() -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")


def main(argv: list[str]) -> int:
    condition, separator, command = argv[0], argv[1], argv[2:]
    assert separator == "--" and command, __doc__
    if condition == "seccomp-userns":
        install_filter(refuse(NR_UNSHARE, (JSET_K, arg_offset(0), CLONE_NEWUSER)))
    elif condition == "ro-proc-sys":
        private_mounts()
        _check(_libc.mount(b"/proc/sys", b"/proc/sys", None, MS_BIND, None), "bind /proc/sys")
        _check(_libc.mount(None, b"/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None), "read-only /proc/sys")
    elif condition == "ro-run":
        private_mounts()
        _check(_libc.mount(b"/run", b"/run", None, MS_BIND, None), "bind /run")
        _check(_libc.mount(None, b"/run", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None), "read-only /run")
    elif condition == "no-tracefs":
        private_mounts()
        for place in (b"/sys/kernel/tracing", b"/sys/kernel/debug"):
            _check(_libc.mount(b"none", place, b"tmpfs", 0, b"mode=0555"), f"hide {place.decode()}")
        install_filter(refuse(NR_MOUNT, (JEQ_K, arg_offset(3), 0)))
    else:
        raise SystemExit(f"unknown condition {condition!r}")
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
