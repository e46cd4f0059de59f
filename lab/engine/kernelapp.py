"""The kernel-side application: a script's syscalls on real sockets.

Sockets are created inside the kernel namespace; the script's file
descriptor numbers (``socket(...) = 3``) are names for them. Every call runs in
a thread of its own, so a blocking call blocks only itself while the script's
timeline goes on. Addresses written ``...`` are the lab's plan, given by the
runner: what bind() takes and where connect() goes.
"""

from __future__ import annotations

import errno as errno_codes
import fcntl
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from lab.errors import BadInput
from lab.script.events import ELLIPSIS, BitOr, Call, ListValue, Name, StructValue, SyscallEvent
from netns import inside

# name -> how many arguments a call needs (packetdrill's C signatures)
ARGUMENTS = {"socket": 3, "setsockopt": 5, "getsockopt": 5, "fcntl": 2, "bind": 3, "listen": 2, "accept": 3,
             "connect": 3, "read": 3, "recv": 4, "write": 3, "send": 4, "shutdown": 2, "close": 1}
SYSCALLS = tuple(ARGUMENTS)
_EXTRA_CONSTANTS = {"SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2}


def constant(name: str, where: str) -> int:
    """A symbolic constant from the socket, os or fcntl modules (Linux values)."""
    for module in (socket, os, fcntl):
        value = getattr(module, name, None)
        if isinstance(value, int):
            return int(value)
    if name in _EXTRA_CONSTANTS:
        return _EXTRA_CONSTANTS[name]
    raise BadInput(f"{where}: unknown constant {name!r}")


def value_of(expr, where: str) -> int:
    """An integer argument: a number, a NAME, A|B, htons(N) or [N]."""
    if isinstance(expr, int):
        return expr
    if isinstance(expr, Name):
        return constant(expr.name, where)
    if isinstance(expr, BitOr):
        result = 0
        for part in expr.parts:
            result |= value_of(part, where)
        return result
    if isinstance(expr, ListValue) and len(expr.items) == 1:
        return value_of(expr.items[0], where)
    if isinstance(expr, Call) and expr.name in ("htons", "htonl", "ntohs", "ntohl") and len(expr.args) == 1:
        return value_of(expr.args[0], where)
    raise BadInput(f"{where}: expected a number here, found {expr}")


def _names(expr) -> list[str]:
    """The symbolic constants inside an argument (struct field names excluded)."""
    if isinstance(expr, Name):
        return [expr.name]
    if isinstance(expr, (BitOr, ListValue, Call)):
        parts = expr.parts if isinstance(expr, BitOr) else expr.items if isinstance(expr, ListValue) else expr.args
        return [name for part in parts for name in _names(part)]
    if isinstance(expr, StructValue):
        return [name for _, value in expr.fields for name in _names(value)]
    return []


def validate_syscall(event: SyscallEvent, path: str) -> None:
    """Reject unsupported calls and unknown constants before anything runs."""
    where = f"{path}:{event.line}"
    if event.name not in SYSCALLS:
        raise BadInput(f"{where}: unsupported syscall {event.name!r} (supported: {', '.join(SYSCALLS)})")
    if len(event.args) < ARGUMENTS[event.name]:
        raise BadInput(f"{where}: {event.name}() takes {ARGUMENTS[event.name]} arguments, the line gives "
                       f"{len(event.args)}")
    for arg in event.args:
        for name in _names(arg):
            constant(name, where)


@dataclass
class CallResult:
    """What a syscall returned, when, and anything it read back (getsockopt)."""

    result: int
    errno: str | None
    returned_at: float
    detail: str = ""
    bad_input: BadInput | None = None  # the script asked for something impossible


@dataclass
class RunningCall:
    """A syscall running in its thread: when it really began, and (once it returns) its result."""

    thread: threading.Thread | None = None
    box: list[CallResult] = field(default_factory=list)
    began: threading.Event = field(default_factory=threading.Event)
    began_at: float = 0.0


class KernelApp:
    """Runs syscalls for one script run in the kernel namespace."""

    def __init__(self, ns: str, family: int, bind_address: tuple[str, int], connect_address: tuple[str, int],
                 path: str):
        self.ns = ns
        self.af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.bind_address = bind_address
        self.connect_address = connect_address
        self.path = path
        self.fds: dict[int, socket.socket] = {}
        self.last_connection: socket.socket | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every socket; blocked calls wake up (shutdown) and end."""
        with self._lock:
            sockets = list(self.fds.values())
            self.fds.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def start(self, event: SyscallEvent) -> RunningCall:
        """Start the call in its own thread; its box receives the CallResult."""
        call = RunningCall()
        call.thread = threading.Thread(target=self._run, args=(event, call), name=f"syscall {event.name}",
                                       daemon=True)
        call.thread.start()
        return call

    def _run(self, event: SyscallEvent, call: RunningCall) -> None:
        where = f"{self.path}:{event.line}"
        box = call.box
        # Noted in the thread, just before the call: a thread can take milliseconds
        # to get going on a loaded machine, and the script's clock counts from here.
        call.began_at = time.monotonic()
        call.began.set()
        try:
            result, detail = getattr(self, f"_{event.name}")(event, where)
            box.append(CallResult(result, None, time.monotonic(), detail))
        except BadInput as error:
            box.append(CallResult(-1, None, time.monotonic(), bad_input=error))
        except (ValueError, OverflowError, TypeError, struct.error) as error:  # recv(4, ..., -1), [2**70]
            box.append(CallResult(-1, None, time.monotonic(), bad_input=BadInput(f"{where}: {event.name}(): {error}")))
        except OSError as error:
            name = errno_codes.errorcode.get(error.errno, str(error.errno)) if error.errno else "EIO"
            box.append(CallResult(-1, name, time.monotonic()))

    def _sock(self, expr, where: str) -> socket.socket:
        fd = value_of(expr, where)
        with self._lock:
            sock = self.fds.get(fd)
        if sock is None:
            raise OSError(errno_codes.EBADF, "no such script fd")
        return sock

    def _register(self, event: SyscallEvent, sock: socket.socket) -> int:
        with self._lock:
            fd = event.result if isinstance(event.result, int) and event.result >= 0 else max(self.fds, default=2) + 1
            self.fds[fd] = sock
        return fd

    # -- the calls ---------------------------------------------------------
    def _socket(self, event, where):
        kind = value_of(event.args[1], where) if len(event.args) > 1 else socket.SOCK_STREAM
        with inside(self.ns):
            sock = socket.socket(self.af, kind & ~(os.O_NONBLOCK | os.O_CLOEXEC), socket.IPPROTO_TCP)
        if kind & os.O_NONBLOCK:
            sock.setblocking(False)
        return self._register(event, sock), ""

    def _setsockopt(self, event, where):
        sock = self._sock(event.args[0], where)
        level, option = value_of(event.args[1], where), value_of(event.args[2], where)
        value = event.args[3]
        if isinstance(value, StructValue):
            # struct linger: packetdrill writes {onoff=1, linger=0}; the C names work too.
            onoff = value.get("onoff", value.get("l_onoff"))
            if onoff is None:
                raise BadInput(f"{where}: unsupported struct {value} (only struct linger: {{onoff=1, linger=0}})")
            linger = value.get("linger", value.get("l_linger", 0))
            sock.setsockopt(level, option, struct.pack("ii", value_of(onoff, where), value_of(linger, where)))
        else:
            sock.setsockopt(level, option, value_of(value, where))
        return 0, ""

    def _getsockopt(self, event, where):
        sock = self._sock(event.args[0], where)
        level, option = value_of(event.args[1], where), value_of(event.args[2], where)
        actual = sock.getsockopt(level, option)
        expected = event.args[3] if len(event.args) > 3 else ELLIPSIS
        if expected is not ELLIPSIS and value_of(expected, where) != actual:
            return 0, f"optval is [{actual}], expected {expected}"
        return 0, ""

    def _fcntl(self, event, where):
        sock = self._sock(event.args[0], where)
        command = value_of(event.args[1], where)
        if len(event.args) > 2:
            return fcntl.fcntl(sock.fileno(), command, value_of(event.args[2], where)), ""
        return fcntl.fcntl(sock.fileno(), command), ""

    def _bind(self, event, where):
        self._sock(event.args[0], where).bind(self.bind_address)
        return 0, ""

    def _listen(self, event, where):
        backlog = value_of(event.args[1], where) if len(event.args) > 1 else 1
        self._sock(event.args[0], where).listen(backlog)
        return 0, ""

    def _accept(self, event, where):
        connection, _ = self._sock(event.args[0], where).accept()
        self.last_connection = connection
        return self._register(event, connection), ""

    def _connect(self, event, where):
        sock = self._sock(event.args[0], where)
        self.last_connection = sock
        error = sock.connect_ex(self.connect_address)
        if error:
            raise OSError(error, os.strerror(error))
        return 0, ""

    def _read(self, event, where):
        return len(self._sock(event.args[0], where).recv(value_of(event.args[2], where))), ""

    def _recv(self, event, where):
        flags = value_of(event.args[3], where) if len(event.args) > 3 else 0
        return len(self._sock(event.args[0], where).recv(value_of(event.args[2], where), flags)), ""

    def _write(self, event, where):
        return self._sock(event.args[0], where).send(b"\0" * value_of(event.args[2], where)), ""

    def _send(self, event, where):
        flags = value_of(event.args[3], where) if len(event.args) > 3 else 0
        return self._sock(event.args[0], where).send(b"\0" * value_of(event.args[2], where), flags), ""

    def _shutdown(self, event, where):
        self._sock(event.args[0], where).shutdown(value_of(event.args[1], where))
        return 0, ""

    def _close(self, event, where):
        fd = value_of(event.args[0], where)
        with self._lock:
            sock = self.fds.pop(fd, None)
        if sock is None:
            raise OSError(errno_codes.EBADF, "no such script fd")
        sock.close()
        return 0, ""
