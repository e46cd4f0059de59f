"""Ports leased to one run, machine-wide, so that runs at once never read each other's sockets in the trace.

The kernel's tracepoints (sock:inet_sock_set_state, tcp:tcp_send_reset) carry
a socket's addresses and ports, not its namespace, and every run uses the
same address plan: a run keeps the events of its own ports
(lab/live/tracepoints.py ``select``). Two runs at once whose ports overlapped,
in any two processes, would each take in the other's events (seen: a client's
second CLOSED -> SYN_SENT in a run that made one connection). So each run
leases a block of ports: a lock (fcntl, a byte range of one byte) on the
block's byte of the lease file, which the kernel drops when the process ends,
however it ends. Where the file cannot be opened (another user's), a block
is picked at random, as before leases. The namespaces' own ephemeral ports
lie below the leases (netns/addresses.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
from collections.abc import Iterator

from netns.addresses import LEASED_PORTS

BLOCK = 64  # ports per lease: an observe run's client range, a drive run's lab port and the next ones
FIRST_PORT = LEASED_PORTS.start
BLOCKS = len(LEASED_PORTS) // BLOCK
LOCK_FOLDER = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"  # not $TMPDIR: one file for every run
LEASES = os.path.join(LOCK_FOLDER, "tcplab-port-leases")

_file: int | None = None  # one descriptor per process: closing any of its descriptors would drop all its locks
_held: set[int] = set()  # blocks this process leases now (its own locks never conflict with each other)


def _lease_file() -> int | None:
    global _file
    if _file is None:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:  # an existing file first: in a sticky folder (/run/lock, /tmp) the kernel may refuse O_CREAT on
                _file = os.open(LEASES, flags)  # another user's file (fs.protected_regular)
            except FileNotFoundError:
                _file = os.open(LEASES, flags | os.O_CREAT, 0o666)
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.fchmod(_file, 0o666)  # whoever made it: every user's runs lease from the same file
    return _file


@contextlib.contextmanager
def leased_ports() -> Iterator[range]:
    """A block of BLOCK ports that no other run on this machine uses until the block ends."""
    block = _lease()
    try:
        yield range(FIRST_PORT + block * BLOCK, FIRST_PORT + (block + 1) * BLOCK)
    finally:
        _release(block)


def _lease() -> int:
    leases = _lease_file()
    first = random.randrange(BLOCKS)
    for block in ((first + step) % BLOCKS for step in range(BLOCKS)):  # from a random one, each in turn
        if block in _held:
            continue
        if leases is not None:
            try:
                fcntl.lockf(leases, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, block)
            except OSError as error:
                if error.errno in (errno.EACCES, errno.EAGAIN):
                    continue  # another process's run holds it
                # No lock to be had (ENOLCK): the block unlocked, as without the file.
        _held.add(block)  # this process's, locked or not
        return block
    # Every block leased: one this process does not hold, as before leases.
    return random.choice([block for block in range(BLOCKS) if block not in _held] or range(BLOCKS))


def _release(block: int) -> None:
    if block in _held:
        _held.discard(block)
        if (leases := _lease_file()) is not None:
            with contextlib.suppress(OSError):
                fcntl.lockf(leases, fcntl.LOCK_UN, 1, block)
