"""A trace instance of the run's own in tracefs, without mounting anything on the host.

A lab run must not leave a mount behind, and tracefs is not mounted on
every host. Where it is (systemd mounts it on /sys/kernel/tracing at boot;
with debugfs mounted it may also be at /sys/kernel/debug/tracing) the run
opens a directory fd to that mount: tracefs has one superblock, so mounting
it again there is refused with EBUSY. Elsewhere a short-lived thread
unshares its mount namespace (allowed in a multithreaded process: only that
thread's view changes), makes ``/`` private, mounts tracefs on
/sys/kernel/tracing there and opens a directory fd to it; the mount
disappears with the thread's namespace. Every other thread then works
through that fd (``dir_fd=``), and nothing stays mounted when the process ends.

The instance directory (``instances/tcplab-<pid>-<start>-0-trace``, one per
process: :func:`process_instance`) is a global kernel object: it is removed
when the process exits, also on errors and Ctrl-C, and ``tcplab topo
cleanup`` removes those of dead processes (the name carries the process's
identity, as namespace names do).
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import multiprocessing.util
import os
import sys
import threading
import time

from netns.names import PREFIX, RunId, parse_netns
from netns.signals import deferred_signals, start_blocking_signals

TRACEFS = b"/sys/kernel/tracing"
MOUNTED_PLACES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")  # where a host mounts tracefs
TRACEFS_MAGIC = 0x74726163
BUSY_WAIT = 0.5  # seconds a removal waits for an instance's last open file to be closed
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


class TracingUnavailable(Exception):
    """tracefs cannot be reached here (no privileges, not built in): the reason, for a note."""


def _mount_tracefs() -> int:
    """In the calling thread only: a private mount namespace with tracefs; a dir fd to its root."""
    steps = (("unshare the mount namespace", lambda: _libc.unshare(CLONE_NEWNS)),
             ("make / private", lambda: _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)),
             ("mount tracefs", lambda: _libc.mount(b"nodev", TRACEFS, b"tracefs", 0, None)))
    for what, call in steps:
        if call() != 0:
            number = ctypes.get_errno()
            raise TracingUnavailable(f"cannot {what}: {os.strerror(number)}")
    return os.open(TRACEFS, os.O_RDONLY | os.O_DIRECTORY)


def _filesystem_type(fd: int) -> int:
    """The f_type of fstatfs(fd): the filesystem's magic number (struct statfs starts with it, a long)."""
    buffer = ctypes.create_string_buffer(256)  # larger than struct statfs on every architecture
    if _libc.fstatfs(fd, buffer) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return ctypes.c_long.from_buffer(buffer).value


def _open_mounted(place: str) -> int | None:
    """A dir fd to the tracefs mounted at ``place``; None where none is mounted there.

    The path is opened with O_PATH and without O_DIRECTORY first: that
    neither needs read permission nor triggers debugfs's automount of
    ``tracing`` (which would leave a mount on the host); only a tracefs is
    then opened for reading. Raises OSError when one is mounted but cannot
    be opened (a user namespace's root has no rights over the host's).
    """
    try:
        handle = os.open(place, os.O_PATH)
    except FileNotFoundError:
        return None
    try:
        if _filesystem_type(handle) != TRACEFS_MAGIC:
            return None
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=handle)
    finally:
        os.close(handle)


def tracefs_root() -> int:
    """A dir fd to a tracefs root: the host's mount if any, else a private one (see the module's docstring)."""
    refused = ""
    for place in MOUNTED_PLACES:
        try:
            root = _open_mounted(place)
        except OSError as error:
            refused = refused or f"cannot open {place}: {error.strerror}"
            continue
        if root is not None:
            return root
    try:
        return _private_tracefs_root()
    except TracingUnavailable as error:
        raise TracingUnavailable(f"{error}; {refused}" if refused else str(error)) from None


def _private_tracefs_root() -> int:
    """A dir fd to a tracefs mounted by a thread of its own in its own mount namespace."""
    box: list = []

    def mount() -> None:
        try:
            box.append(_mount_tracefs())
        except (TracingUnavailable, OSError) as error:
            box.append(error)

    start_blocking_signals(threading.Thread(target=mount, name="tcplab-tracefs")).join()
    if isinstance(box[0], TracingUnavailable):
        raise box[0]
    if isinstance(box[0], OSError):
        raise TracingUnavailable(f"cannot open tracefs: {box[0].strerror or box[0]}")
    return box[0]


class TraceInstance:
    """A trace instance named ``name``: created on entry, removed on exit."""

    def __init__(self, name: str):
        self.name = name
        self.root = self.fd = -1
        self.prepared = False  # its user's one-time settings are made

    def __enter__(self) -> TraceInstance:
        self.root = tracefs_root()
        try:
            with deferred_signals():  # made and recorded for removal together
                os.mkdir(f"instances/{self.name}", dir_fd=self.root)
                self.fd = os.open(f"instances/{self.name}", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self.root)
        except OSError as error:
            os.close(self.root)
            raise TracingUnavailable(f"cannot create trace instance {self.name}: {error.strerror}") from None
        return self

    def __exit__(self, *exc_info) -> None:
        with deferred_signals():
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if self.root >= 0:
                _remove(self.root, self.name)
                os.close(self.root)
                self.root = -1

    def write(self, path: str, text: str) -> None:
        """Write one of the instance's files. Signals wait until it is closed again: an open file holds the
        instance, and an interrupt between open and close would leave the exit's rmdir busy (EBUSY)."""
        with deferred_signals():
            handle = os.open(path, os.O_WRONLY | os.O_TRUNC, dir_fd=self.fd)
            try:
                os.write(handle, text.encode())
            finally:
                os.close(handle)

    def read(self, path: str) -> str:
        """A whole file, without waiting: tracefs hands out a page per read(), and ``trace_pipe`` (a
        consuming read: what was read is gone from the buffer) would block when empty."""
        chunks = []
        with deferred_signals():  # as for write
            handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK, dir_fd=self.fd)
            try:
                while chunk := os.read(handle, 1 << 16):
                    chunks.append(chunk)
            except BlockingIOError:
                pass
            finally:
                os.close(handle)
        return b"".join(chunks).decode(errors="replace")


_shared: TraceInstance | None = None
_shared_pid = 0
_unavailable = ""
_exiting = False  # the process removed its instance on the way out: none is made any more
_lock = threading.Lock()


def process_instance() -> TraceInstance:
    """This process's trace instance, made on first use and removed when the process exits.

    Making and removing an instance are slow (each waits for RCU grace
    periods), and removals contend with the next creation: one instance
    serves every run of a process, one run at a time. It is removed at exit,
    also after Ctrl-C or SIGTERM (atexit in the main process, a
    multiprocessing finalizer in a worker); a forked child never removes its
    parent's. Raises TracingUnavailable (remembered) where tracefs cannot be reached.
    """
    global _shared, _shared_pid, _unavailable
    with _lock:
        if _shared is not None and _shared_pid == os.getpid():
            return _shared
        if _unavailable:
            raise TracingUnavailable(_unavailable)
        if _exiting:
            raise TracingUnavailable("the process is exiting")
        run = RunId.current()
        instance = TraceInstance(f"{PREFIX}-{run.pid}-{run.start}-0-trace")
        try:
            instance.__enter__()
        except TracingUnavailable as error:
            _unavailable = str(error)
            raise
        _shared, _shared_pid = instance, os.getpid()
        atexit.register(remove_process_instance)
        multiprocessing.util.Finalize(None, remove_process_instance, exitpriority=10)
        return instance


def remove_process_instance() -> None:
    """Remove this process's instance, if it made one (idempotent); none is made after this."""
    global _exiting
    with _lock:
        _exiting = True
        _remove_shared()


def retire_process_instance() -> None:
    """Remove this process's instance on a thread of its own, now that no run of the process will read it.

    The removal waits ~45 ms on the kernel (RCU grace periods); on its own
    thread it overlaps what the process still does (the topology's removal,
    the report). A run that comes after all makes a new instance; the exit
    waits for the removal (it holds the lock ``remove_process_instance``
    takes, and the thread is not a daemon).
    """
    def remove() -> None:
        with _lock:
            _remove_shared()

    start_blocking_signals(threading.Thread(target=remove, name="tcplab trace instance removal"))


def _remove_shared() -> None:
    """Remove the process's instance (the caller holds ``_lock``); a removal the kernel refuses is one line
    that says where the user can finish it, not a traceback."""
    global _shared
    if _shared is not None and _shared_pid == os.getpid():
        try:
            _shared.__exit__(None, None, None)
        except OSError as error:
            print(f"tcplab: cannot remove trace instance {_shared.name} ({error.strerror}); `tcplab topo "
                  "cleanup` removes it once this process has ended", file=sys.stderr)
    _shared = None


def _remove(root: int, name: str) -> None:
    """rmdir an instance (gone already: nothing to do). The kernel refuses while a file of it is open
    (EBUSY), as when another thread is just closing one: the removal tries again for up to BUSY_WAIT."""
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            os.rmdir(f"instances/{name}", dir_fd=root)
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def remove_dead_instances() -> list[str]:
    """Remove the trace instances of tcplab runs that are no longer alive; return their names."""
    try:
        root = tracefs_root()
    except TracingUnavailable:
        return []
    removed = []
    try:
        listing = os.open("instances", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root)
        try:
            names = sorted(os.listdir(listing))
        finally:
            os.close(listing)
        for name in names:
            parsed = parse_netns(name)
            if parsed is None or parsed[0].is_alive():
                continue
            with deferred_signals():
                _remove(root, name)
            removed.append(name)
    finally:
        os.close(root)
    return removed
