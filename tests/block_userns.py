"""Run a command where new user namespaces are forbidden.

Test helper, run as root: a child enters a new user namespace that maps root
and nobody, sets ``user.max_user_namespaces`` to 0 there (nested user
namespaces are then refused with ENOSPC) and execs the command, still root of
that namespace but without any privilege over the host's mounts; the command
can drop to nobody itself (setpriv). The host's own setting is never touched.
"""

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
NOBODY = 65534


def main(argv: list[str]) -> int:
    go_read, go_write = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWUSER) != 0:
            os._exit(99)
        os.write(ready_write, b"1")
        os.read(go_read, 1)
        with open("/proc/sys/user/max_user_namespaces", "w") as limit:
            limit.write("0")
        os.execv(argv[0], argv)
    os.read(ready_read, 1)
    for kind in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{kind}", "w") as mapping:
            mapping.write(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
    os.write(go_write, b"1")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
