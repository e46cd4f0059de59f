"""Named network namespaces: create, enter from a thread, sysctls, remove.

A namespace is created by a short-lived thread that unshares its own network
namespace and has pyroute2 bind-mount it under /run/netns (``netns.attach``).
That avoids the fork pyroute2's ``netns.create`` makes: it is several times
faster, and it starts no child process in a program that already runs
threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Iterator

from pyroute2 import netns as pr_netns

CLONE_NEWNET = 0x40000000
SYSCTL_ROOT = "/proc/sys"

# Handed to pyroute2's netns calls: without it pyroute2 finds libc with ctypes.util.find_library, which
# runs ``ldconfig -p`` in a subprocess (~8 ms) in every process that makes or enters a namespace.
_libc = ctypes.CDLL(None, use_errno=True)


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
            if _libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
            pr_netns.attach(name, "thread-self", libc=_libc)
        except BaseException as exc:  # handed to the creating thread below
            failure.append(exc)

    worker = threading.Thread(target=unshare_and_attach, name=f"create {name}")
    worker.start()
    worker.join()
    if failure:
        with contextlib.suppress(OSError):
            remove(name)
        error = failure[0]
        if isinstance(error, OSError):
            raise NamespaceError(error.errno, f"cannot create network namespace {name}: {error.strerror}") from error
        raise error


def remove(name: str) -> None:
    """Remove the named namespace; the kernel frees its devices once unused."""
    try:
        pr_netns.remove(name, libc=_libc)
    except FileNotFoundError:
        pass


def listed() -> list[str]:
    """Names under /run/netns."""
    return list(pr_netns.listnetns())


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Move the calling thread into namespace ``name`` for the block, then back.

    Sockets keep the namespace they were created in, so a socket made inside
    the block lives in ``name`` for good. Only the calling thread moves.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        pr_netns.setns(name, flags=0, libc=_libc)
        try:
            yield
        finally:
            pr_netns.setns(home, flags=0, libc=_libc)
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
