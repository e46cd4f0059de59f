"""Named network namespaces: create, enter from a thread, sysctls, remove.

A namespace is created by a short-lived thread that unshares its own network
namespace and bind-mounts it under /var/run/netns, where ``ip netns`` keeps
them (and with the same mount propagation, so that both see the same names).
That needs no fork (pyroute2's ``netns.create`` makes one) and no import of
pyroute2 (netns/netlink.py says why). Entering and removing are the same few
libc calls ``ip netns exec`` and ``ip netns delete`` make.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Iterator

from netns.signals import start_blocking_signals

CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
MNT_DETACH = 2
NETNS_RUN_DIR = "/var/run/netns"  # iproute2's
SYSCTL_ROOT = "/proc/sys"

_libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc: no ctypes.util.find_library (a subprocess)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


class NamespaceError(OSError):
    """A namespace could not be made: missing privileges or no namespace support."""


class SysctlError(ValueError):
    """A sysctl name that is not a namespaced net.* setting, or a bad value."""


class ReadOnlySysctls(NamespaceError):
    """/proc/sys is mounted read-only (as container runtimes mount it): no namespace can be configured."""


def create(name: str) -> None:
    """Create the named network namespace ``name`` (bind-mounted in /run/netns)."""
    failure: list[BaseException] = []

    def unshare_and_attach() -> None:
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _attach(name)
        except BaseException as exc:  # handed to the creating thread below
            failure.append(exc)

    start_blocking_signals(threading.Thread(target=unshare_and_attach, name=f"create {name}")).join()
    if failure:
        with contextlib.suppress(OSError):
            remove(name)
        error = failure[0]
        if isinstance(error, OSError):
            raise NamespaceError(error.errno, f"cannot create network namespace {name}: {error.strerror}") from error
        raise error


def _attach(name: str) -> None:
    """Bind-mount the calling thread's network namespace as ``name``, as ``ip netns add`` does: the run
    directory is a shared mount (made one on itself first if need be), so the name is seen everywhere."""
    run_dir = NETNS_RUN_DIR.encode()
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    if _libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None) != 0:
        _check(_libc.mount(run_dir, run_dir, b"none", MS_BIND | MS_REC, None), f"bind-mount {NETNS_RUN_DIR}")
        _check(_libc.mount(b"none", run_dir, None, MS_SHARED | MS_REC, None), f"share {NETNS_RUN_DIR}")
    path = os.path.join(NETNS_RUN_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None), f"bind-mount {path}")


def remove(name: str) -> None:
    """Remove the named namespace; the kernel frees its devices once unused."""
    path = os.path.join(NETNS_RUN_DIR, name)
    _libc.umount2(path.encode(), MNT_DETACH)  # not mounted (a failed create): the unlink still removes it
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def listed() -> list[str]:
    """The named namespaces (``ip netns list``)."""
    try:
        return os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []


def _enter(fd: int, what: str) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), f"enter network namespace {what}")


@contextlib.contextmanager
def opened(name: str) -> Iterator[int]:
    """A file descriptor of namespace ``name`` for the block (a netlink request may name a namespace by one)."""
    fd = os.open(os.path.join(NETNS_RUN_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Move the calling thread into namespace ``name`` for the block, then back.

    Sockets keep the namespace they were created in, so a socket made inside
    the block lives in ``name`` for good. Only the calling thread moves.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with opened(name) as target:
            _enter(target, name)
        try:
            yield
        finally:
            _enter(home, "of the thread")
    finally:
        os.close(home)


def _sysctl_path(key: str) -> str:
    parts = key.replace("/", ".").split(".")
    if parts[0] != "net" or len(parts) < 3 or any(not p or p in (".", "..") for p in parts):
        raise SysctlError(f"sysctl {key!r}: only namespaced net.* settings can be changed")
    return os.path.join(SYSCTL_ROOT, *parts)


def read_sysctl(name: str, key: str) -> str:
    """Read a net.* sysctl as the namespace ``name`` sees it."""
    path = _sysctl_path(key)
    with inside(name):
        try:
            with open(path) as handle:
                return " ".join(handle.read().split())
        except FileNotFoundError:
            raise SysctlError(f"sysctl {key!r} does not exist on this kernel") from None


def write_sysctl(name: str, key: str, value: object) -> None:
    """Write a net.* sysctl inside namespace ``name`` only (never the host's)."""
    write_sysctls(name, {key: value})


def write_sysctls(name: str, settings: dict[str, object]) -> None:
    """Write several net.* sysctls inside namespace ``name``, entering it once."""
    paths = {key: _sysctl_path(key) for key in settings}
    with inside(name):
        for key, value in settings.items():
            try:
                with open(paths[key], "w") as handle:
                    handle.write(str(value))
            except FileNotFoundError:
                raise SysctlError(f"sysctl {key!r} does not exist on this kernel") from None
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    raise ReadOnlySysctls(errno.EROFS, f"/proc/sys is read-only here, so the lab cannot set "
                                                       f"{key} in its namespace") from None
                raise SysctlError(f"sysctl {key}={value}: {exc.strerror}") from None
