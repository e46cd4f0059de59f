"""The kernel-side application: a script's syscalls on real sockets, pipes and files.

Sockets are created inside the kernel namespace; the script's file
descriptor numbers (``socket(...) = 3``) are names for them. A call that may
wait for the kernel runs in a worker thread, so a blocking call blocks only
itself while the script's timeline goes on; one that cannot (SYSCALLS says
which) runs on the timeline's own thread, five times cheaper. Addresses
written ``...`` are the lab's plan, given by the runner: what bind() takes and
where connect() and sendto() go.

One table, ``SYSCALLS``, names every call tcplab runs: its argument count
(packetdrill's C signatures) and its handler. Calls whose buffers may be
``NULL`` go through libc (ctypes), so the kernel answers EFAULT as it would
to a C program.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import fcntl
import ipaddress
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.judge.timing import window
from lab.errors import BadInput
from lab.script.events import (
    ELLIPSIS,
    Bytes,
    ListValue,
    Name,
    StructValue,
    SyscallEvent,
)
from netns import inside, start_blocking_signals

from lab.judge.control import compare_control
from lab.live.punctual import RunqueueWait, above_timelines
from lab.script.values import begins_connection, constant, is_null, names_in, value_of
from lab.tcp.uapi import CONSTANTS as UAPI

_libc = ctypes.CDLL(None, use_errno=True)
for _name in ("read", "write", "send", "recv", "sendto", "recvfrom"):
    getattr(_libc, _name).restype = ctypes.c_ssize_t
# When a call may wait for the kernel (Syscall.waits).
NEVER = "never"  # returns at once whatever the kernel's state
ON_BLOCKING_FD = "on a blocking fd"  # unless its first argument's descriptor is O_NONBLOCK
ON_TIMEOUT = "on a timeout"  # unless its last argument, a timeout, is 0
ON_LINGER = "on a linger"  # close(): only a socket with SO_LINGER on and a linger time (inet_release)
ON_LOCK = "on a file lock"  # fcntl(): only F_SETLKW and F_OFD_SETLKW
ALWAYS = "always"  # may wait; run in a worker, never asked


@dataclass(frozen=True)
class Syscall:
    """One call tcplab runs: the arguments a script writes (packetdrill's C signature), its handler, and
    when it may wait for the kernel (calls that cannot run on the timeline's own thread)."""

    name: str
    arguments: int
    handler: Callable  # (app, event, where) -> (result, detail)
    optional: int = 0  # trailing arguments a script may leave out (fcntl's arg, open's mode)
    waits: str = ON_BLOCKING_FD


def validate_syscall(event: SyscallEvent, path: str) -> None:
    """Reject unsupported calls and unknown constants before anything runs."""
    where = f"{path}:{event.line}"
    call = SYSCALLS.get(event.name)
    if call is None:
        raise BadInput(f"{where}: unsupported syscall {event.name!r} (supported: {', '.join(sorted(SYSCALLS))})")
    if not call.arguments - call.optional <= len(event.args) <= call.arguments:
        raise BadInput(f"{where}: {event.name}() takes {call.arguments} arguments, the line gives "
                       f"{len(event.args)}")
    for arg in event.args:
        for name in names_in(arg):
            constant(name, where)


@dataclass
class CallResult:
    """What a syscall returned, when, and anything it read back that differs from the script (a detail)."""

    result: int
    errno: str | None
    returned_at: float
    detail: str = ""
    bad_input: BadInput | None = None  # the script asked for something impossible
    waited: float = 0.0  # seconds its thread spent runnable without a CPU, from its start to returned_at


@dataclass
class RunningCall:
    """A syscall running in a worker thread: when it really began, and (once it returns) its result."""

    box: list[CallResult] = field(default_factory=list)
    began: threading.Event = field(default_factory=threading.Event)
    began_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the call to return."""
        self.done.wait(timeout)


class _Worker(threading.Thread):
    """A thread kept for the application's syscalls, one call at a time.

    Starting a thread per call took milliseconds on a busy machine, which the
    lab would have been late by; a worker that finished waits for the next
    call. Workers start inside the run's timeline, so they inherit its
    scheduling class, one priority above it (lab/live/punctual.py).
    """

    def __init__(self, app: KernelApp):
        super().__init__(name="syscalls", daemon=True)
        self.app = app
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def run(self) -> None:
        above_timelines()
        waits = RunqueueWait()
        try:
            while (work := self.calls.get()) is not None:
                event, call = work
                self.app._run(event, call, waits)
                call.done.set()
                self.app._idle(self)
        finally:
            waits.close()


class RawFd:
    """A file descriptor that is not a socket (pipe end, file, epoll instance): closed with the run."""

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _check(result: int) -> int:
    """A libc call's result; -1 becomes the OSError of its errno."""
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


class _EpollEvent(ctypes.Structure):
    _pack_ = 1  # struct epoll_event is packed on x86-64
    _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


class KernelApp:
    """Runs syscalls for one script run in the kernel namespace."""

    def __init__(self, ns: str, family: int, bind_address: tuple[str, int], connect_address: tuple[str, int],
                 path: str):
        self.ns = ns
        self.af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.bind_address = bind_address
        self.connect_address = connect_address
        self.path = path
        self.fds: dict[int, socket.socket | RawFd] = {}
        self.last_connection: socket.socket | None = None
        # packetdrill's rule: the first SYN after listen() or connect() begins a new connection under test.
        self._new_connection = False
        self._script_time_at: Callable[[float], float] | None = None  # the run's clock: monotonic -> script
        self._settings = None  # the run's Settings: the timing rule's tolerance
        self._realtime_offset = 0.0  # CLOCK_REALTIME - CLOCK_MONOTONIC: the wire's reading
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle_workers: list[_Worker] = []

    def clock_started(self, script_time_at: Callable[[float], float], settings, realtime_offset: float) -> None:
        """The run's clock began: kernel timestamps (SO_TIMESTAMPING, CLOCK_REALTIME) are read on the
        script's timeline as the run maps it (``script_time_at`` of a monotonic moment, with the wire's
        ``realtime_offset``) and judged by the timing rule (lab/judge/timing.py)."""
        self._script_time_at = script_time_at
        self._settings = settings
        self._realtime_offset = realtime_offset

    def _check_stamp(self, index: int, script_seconds: float, stamp: float) -> str:
        """An scm_timestamping stamp against the script time it should show (packetdrill's rule)."""
        if self._script_time_at is None:
            return ""
        taken = self._script_time_at(stamp - self._realtime_offset)
        on_time = window(self._settings, script_seconds, since=script_seconds)  # a moment of its own: no gap
        if not on_time.holds(taken):
            return (f"cmsg {index}: the timestamp reads {taken:.4f} s, expected {script_seconds:.4f} s "
                    f"(tolerance {on_time.allowed * 1000:.1f} ms)")
        return ""

    def take_new_connection(self) -> bool:
        """Whether a listen() or connect() since the last SYN makes this SYN a new connection (asked once)."""
        pending, self._new_connection = self._new_connection, False
        return pending

    def close(self) -> None:
        """Close every descriptor; blocked calls wake up (shutdown) and end, and so do the workers."""
        with self._lock:
            objects = list(self.fds.values())
            self.fds.clear()
            workers, self._workers, self._idle_workers = self._workers, [], []
        for worker in workers:
            worker.calls.put(None)
        for obj in objects:
            if isinstance(obj, socket.socket):
                try:
                    obj.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            obj.close()

    def warm_up(self) -> None:
        """Start one worker before the timeline (its scheduling class is the timeline's): starting a thread
        at the first call made it 0.45 ms late, and every later line with it."""
        with self._lock:
            if self._workers:
                return
            worker = _Worker(self)
            self._workers.append(worker)
            self._idle_workers.append(worker)
        start_blocking_signals(worker)  # a signal for the run goes to the main thread's wait, not to a worker

    def cannot_block(self, event: SyscallEvent) -> bool:
        """Whether the call returns without waiting for the kernel, whatever the kernel does (SYSCALLS' waits).

        Asked of a call the script expects to return at once; False where a descriptor is unknown or an
        argument is bad, so that the worker reports it as for any call."""
        rule = SYSCALLS[event.name].waits
        where = f"{self.path}:{event.line}"
        try:
            if rule == NEVER:
                return True
            if rule == ON_BLOCKING_FD:
                return bool(fcntl.fcntl(self._fd(event.args[0], where), fcntl.F_GETFL) & os.O_NONBLOCK)
            if rule == ON_TIMEOUT:
                return value_of(event.args[-1], where) == 0
            if rule == ON_LOCK:
                return value_of(event.args[1], where) not in (fcntl.F_SETLKW, fcntl.F_OFD_SETLKW)
            if rule == ON_LINGER:
                obj = self._object(event.args[0], where)
                if not isinstance(obj, socket.socket):
                    return True
                onoff, linger = struct.unpack("ii", obj.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
                return not (onoff and linger)
        except (BadInput, OSError, ValueError, OverflowError, TypeError):
            return False
        return False

    def start(self, event: SyscallEvent, at_once: bool = False) -> RunningCall:
        """Start the call: ``at_once`` (a call that cannot block, cannot_block), on the calling thread; else
        in a worker thread (an idle one, else a new one). The call's box receives the CallResult.

        A call that cannot block runs on the timeline's thread because handing it to a worker and back
        costs several times the call itself (docs/timing-evidence.md)."""
        call = RunningCall()
        if at_once:
            self._run(event, call)
            call.done.set()
            return call
        with self._lock:
            worker = self._idle_workers.pop() if self._idle_workers else None
            if worker is None:
                worker = _Worker(self)
                self._workers.append(worker)
                start_blocking_signals(worker)
        worker.calls.put((event, call))
        return call

    def _idle(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._idle_workers.append(worker)

    def _run(self, event: SyscallEvent, call: RunningCall, waits: RunqueueWait | None = None) -> None:
        """Make the call; its result goes in the box, with how long its thread waited for a CPU (``waits``,
        a worker's: the part of a late return that was the lab's)."""
        where = f"{self.path}:{event.line}"
        box = call.box
        waited = waits.seconds() if waits else 0.0
        # Noted in the thread, just before the call: a thread can take milliseconds
        # to get going on a loaded machine, and the script's clock counts from here.
        call.began_at = time.monotonic()
        call.began.set()
        try:
            if begins_connection(event, where):
                self._new_connection = True
            result, detail = SYSCALLS[event.name].handler(self, event, where)
            box.append(CallResult(result, None, time.monotonic(), detail))
        except BadInput as error:
            box.append(CallResult(-1, None, time.monotonic(), bad_input=error))
        except (ValueError, OverflowError, TypeError, struct.error) as error:  # recv(4, ..., -1), [2**70]
            box.append(CallResult(-1, None, time.monotonic(), bad_input=BadInput(f"{where}: {event.name}(): {error}")))
        except OSError as error:
            name = errno_codes.errorcode.get(error.errno, str(error.errno)) if error.errno else "EIO"
            box.append(CallResult(-1, name, time.monotonic()))
        if waits is not None:
            box[-1].waited = waits.seconds() - waited

    # -- descriptors ---------------------------------------------------------
    def _object(self, expr, where: str) -> socket.socket | RawFd:
        fd = value_of(expr, where)
        with self._lock:
            obj = self.fds.get(fd)
        if obj is None:
            raise OSError(errno_codes.EBADF, "no such script fd")
        return obj

    def _sock(self, expr, where: str) -> socket.socket:
        obj = self._object(expr, where)
        if not isinstance(obj, socket.socket):
            raise OSError(errno_codes.ENOTSOCK, "not a socket")
        return obj

    def _fd(self, expr, where: str) -> int:
        return self._object(expr, where).fileno()

    def _register(self, event: SyscallEvent, obj, fd: int | None = None) -> int:
        with self._lock:
            if fd is None:
                fd = event.result if isinstance(event.result, int) and event.result >= 0 else None
            if fd is None:
                fd = max(self.fds, default=2) + 1
            self.fds[fd] = obj
        return fd

    def _address(self, expr, where: str) -> tuple[str, int] | None:
        """A sockaddr argument: ``...`` is the lab's endpoint, and so is a written one
        ({sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}: the runner's
        addresses are mapped onto the lab's plan); AF_UNSPEC disconnects."""
        if expr is ELLIPSIS:
            return self.connect_address
        if isinstance(expr, Name) and expr.name == "AF_UNSPEC":
            return None
        if isinstance(expr, StructValue) and expr.get("sa_family") is not None:
            if expr.get("sa_family") == Name("AF_UNSPEC"):
                return None
            return self.connect_address
        raise BadInput(f"{where}: an address is '...', AF_UNSPEC or {{sa_family=..., sin_port=..., sin_addr=...}}")

    def _sockaddr(self, address: tuple[str, int]) -> bytes:
        ip = ipaddress.ip_address(address[0])
        if ip.version == 6:
            return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", address[1], 0) + ip.packed + b"\0" * 4
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", address[1]) + ip.packed + b"\0" * 8

    @staticmethod
    def _buffer(expr, size: int):
        """The memory a call reads or writes: NULL, the script's string, or zeros."""
        if is_null(expr):
            return None
        if isinstance(expr, Bytes):
            return ctypes.create_string_buffer(expr.data.ljust(size, b"\0"), max(size, len(expr.data)))
        return ctypes.create_string_buffer(max(size, 1))

    # -- sockets -------------------------------------------------------------
    def _socket(self, event, where):
        kind = value_of(event.args[1], where) if event.args[1] is not ELLIPSIS else socket.SOCK_STREAM
        protocol = value_of(event.args[2], where) if event.args[2] is not ELLIPSIS else 0
        with inside(self.ns):
            sock = socket.socket(self.af, kind, protocol)
        return self._register(event, sock), ""

    def _bind(self, event, where):
        self._sock(event.args[0], where).bind(self.bind_address)
        return 0, ""

    def _listen(self, event, where):
        self._sock(event.args[0], where).listen(value_of(event.args[1], where))
        return 0, ""

    def _accept(self, event, where):
        connection, _ = self._sock(event.args[0], where).accept()
        self.last_connection = connection
        return self._register(event, connection), ""

    def _connect(self, event, where):
        sock = self._sock(event.args[0], where)
        address = self._address(event.args[1], where)
        if address is None:  # AF_UNSPEC: disconnect
            unspec = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
            _check(_libc.connect(sock.fileno(), unspec, len(unspec)))
            return 0, ""
        self.last_connection = sock
        error = sock.connect_ex(address)
        if error:
            raise OSError(error, os.strerror(error))
        return 0, ""

    def _shutdown(self, event, where):
        self._sock(event.args[0], where).shutdown(value_of(event.args[1], where))
        return 0, ""

    def _close(self, event, where):
        fd = value_of(event.args[0], where)
        with self._lock:
            obj = self.fds.pop(fd, None)
        if obj is None:
            raise OSError(errno_codes.EBADF, "no such script fd")
        if obj is self.last_connection:
            self.last_connection = None  # a %{ }% block after this has no connection to read
        obj.close()
        return 0, ""

    # -- options and controls --------------------------------------------------
    def _optval(self, value, length: int | None, where: str) -> bytes | None:
        """setsockopt's value in memory: [int], a string, {onoff, linger}, or NULL."""
        if is_null(value):
            return None
        if isinstance(value, Bytes):
            return value.data
        if isinstance(value, StructValue):
            # struct linger: packetdrill writes {onoff=1, linger=0}; the C names work too.
            onoff = value.get("onoff", value.get("l_onoff"))
            if onoff is None:
                raise BadInput(f"{where}: unsupported struct {value} (only struct linger: {{onoff=1, linger=0}})")
            linger = value.get("linger", value.get("l_linger", 0))
            return struct.pack("ii", value_of(onoff, where), value_of(linger, where))
        number = value_of(value, where)
        return struct.pack("q" if length == 8 else "B" if length == 1 else "i", number)

    def _setsockopt(self, event, where):
        sock = self._sock(event.args[0], where)
        level, option = value_of(event.args[1], where), value_of(event.args[2], where)
        length = value_of(event.args[4], where) if len(event.args) > 4 and event.args[4] is not ELLIPSIS else None
        data = self._optval(event.args[3], length, where)
        length = len(data or b"") if length is None else length
        buffer = None if data is None else ctypes.create_string_buffer(data, max(length, len(data), 1))
        _check(_libc.setsockopt(sock.fileno(), level, option, buffer, length))
        return 0, ""

    def _getsockopt(self, event, where):
        sock = self._sock(event.args[0], where)
        level, option = value_of(event.args[1], where), value_of(event.args[2], where)
        expected = event.args[3]
        size = value_of(event.args[4], where) if event.args[4] is not ELLIPSIS else 4
        buffer = ctypes.create_string_buffer(size + 1)
        length = ctypes.c_uint32(size)
        _check(_libc.getsockopt(sock.fileno(), level, option, buffer, ctypes.byref(length)))
        if isinstance(event.args[4], ListValue) and length.value != size:
            return 0, f"optlen is [{length.value}], expected [{size}]"
        actual = buffer.raw[: length.value]
        if isinstance(expected, (Bytes, StructValue)):
            if actual != self._optval(expected, size, where):
                shown = Bytes(actual) if isinstance(expected, Bytes) else struct.unpack("ii", actual[:8].ljust(8, b"\0"))
                return 0, f"optval is {shown}, expected {expected}"
        elif expected is not ELLIPSIS and not is_null(expected):
            number = int.from_bytes(actual[:8], "little", signed=True) if len(actual) == 8 else (
                struct.unpack("i", actual[:4])[0] if len(actual) >= 4 else int.from_bytes(actual, "little"))
            if value_of(expected, where) != number:
                return 0, f"optval is [{number}], expected {expected}"
        return 0, ""

    def _fcntl(self, event, where):
        fd = self._fd(event.args[0], where)
        command = value_of(event.args[1], where)
        if len(event.args) > 2:
            return fcntl.fcntl(fd, command, value_of(event.args[2], where)), ""
        return fcntl.fcntl(fd, command), ""

    def _ioctl(self, event, where):
        fd = self._fd(event.args[0], where)
        request = value_of(event.args[1], where)
        answer = struct.unpack("i", fcntl.ioctl(fd, request, b"\0" * 4))[0]
        expected = event.args[2]
        if expected is not ELLIPSIS and value_of(expected, where) != answer:
            return 0, f"ioctl value is [{answer}], expected {expected}"
        return 0, ""

    # -- data ------------------------------------------------------------------
    def _read(self, event, where):
        count = value_of(event.args[2], where)
        return _check(_libc.read(self._fd(event.args[0], where), self._buffer(event.args[1], count), count)), ""

    def _recv(self, event, where):
        count, flags = value_of(event.args[2], where), value_of(event.args[3], where)
        buffer = self._buffer(event.args[1], count)
        return _check(_libc.recv(self._fd(event.args[0], where), buffer, count, flags)), ""

    def _recvfrom(self, event, where):
        count, flags = value_of(event.args[2], where), value_of(event.args[3], where)
        buffer = self._buffer(event.args[1], count)
        return _check(_libc.recvfrom(self._fd(event.args[0], where), buffer, count, flags, None, None)), ""

    def _write(self, event, where):
        count = value_of(event.args[2], where)
        return _check(_libc.write(self._fd(event.args[0], where), self._buffer(event.args[1], count), count)), ""

    def _send(self, event, where):
        count, flags = value_of(event.args[2], where), value_of(event.args[3], where)
        buffer = self._buffer(event.args[1], count)
        return _check(_libc.send(self._fd(event.args[0], where), buffer, count, flags)), ""

    def _sendto(self, event, where):
        sock = self._sock(event.args[0], where)
        count, flags = value_of(event.args[2], where), value_of(event.args[3], where)
        address = self._address(event.args[4], where)
        name = self._sockaddr(address) if address else None
        if flags & UAPI["MSG_FASTOPEN"]:
            self.last_connection = sock
        buffer = self._buffer(event.args[1], count)
        return _check(_libc.sendto(sock.fileno(), buffer, count, flags, name, len(name or b""))), ""

    def _iov_sizes(self, iov, where: str) -> list[int]:
        """``[{..., 2000}, {..., 0}]``: each iovec's length."""
        if iov is ELLIPSIS or is_null(iov):
            return []
        if not isinstance(iov, ListValue):
            raise BadInput(f"{where}: expected an iovec list like [{{..., 1000}}], found {iov}")
        sizes = []
        for item in iov.items:
            if not (isinstance(item, StructValue) and item.positional):
                raise BadInput(f"{where}: expected an iovec like {{..., 1000}}, found {item}")
            sizes.append(value_of(item.positional[-1], where))
        return sizes

    def _readv(self, event, where):
        sizes = self._iov_sizes(event.args[1], where)
        return os.readv(self._fd(event.args[0], where), [bytearray(size) for size in sizes]), ""

    def _writev(self, event, where):
        sizes = self._iov_sizes(event.args[1], where)
        return os.writev(self._fd(event.args[0], where), [bytes(size) for size in sizes]), ""

    def _msghdr(self, expr, where: str) -> StructValue:
        if not isinstance(expr, StructValue):
            raise BadInput(f"{where}: expected a msghdr like {{msg_name(...)=..., msg_iov(1)=[{{..., 100}}], "
                           f"msg_flags=0}}, found {expr}")
        return expr

    def _sendmsg(self, event, where):
        sock = self._sock(event.args[0], where)
        message = self._msghdr(event.args[1], where)
        buffers = [bytes(size) for size in self._iov_sizes(message.get("msg_iov", ELLIPSIS), where)]
        flags = value_of(event.args[2], where)
        if flags & UAPI["MSG_FASTOPEN"]:
            self.last_connection = sock
            return sock.sendmsg(buffers, [], flags, self.connect_address), ""
        return sock.sendmsg(buffers, [], flags), ""

    def _recvmsg(self, event, where):
        sock = self._sock(event.args[0], where)
        message = self._msghdr(event.args[1], where)
        size = sum(self._iov_sizes(message.get("msg_iov", ELLIPSIS), where))
        data, control, msg_flags, _ = sock.recvmsg(size, 4096, value_of(event.args[2], where))
        expected_flags = message.get("msg_flags", ELLIPSIS)
        if expected_flags is not ELLIPSIS and value_of(expected_flags, where) != msg_flags:
            return len(data), f"msg_flags is {msg_flags:#x}, expected {expected_flags}"
        expected_control = message.get("msg_control", ListValue(()))
        return len(data), compare_control(expected_control, control, lambda expr: value_of(expr, where),
                                          self._check_stamp, where)

    # -- readiness ---------------------------------------------------------------
    def _poll(self, event, where):
        expected = event.args[0]
        items = expected.items if isinstance(expected, ListValue) else ()
        if not all(isinstance(item, StructValue) and item.get("fd") is not None for item in items):
            raise BadInput(f"{where}: poll() takes [{{fd=4, events=POLLIN, revents=POLLIN}}, ...]")
        count = value_of(event.args[1], where)
        entries = (_PollFd * max(count, 1))()
        for index, item in enumerate(items[:count]):
            entries[index].fd = self._fd(item.get("fd"), where)
            entries[index].events = value_of(item.get("events"), where)
        result = _check(_libc.poll(entries, count, value_of(event.args[2], where)))
        for index, item in enumerate(items[:count]):
            want = value_of(item.get("revents", 0), where)
            if entries[index].revents != want:
                return result, f"pollfd {index}: revents is {entries[index].revents:#x}, expected {want:#x}"
        return result, ""

    def _epoll_create(self, event, where):
        fd = _check(_libc.epoll_create(value_of(event.args[0], where)))
        return self._register(event, RawFd(fd)), ""

    def _epoll_data(self, expr: StructValue, where: str) -> int:
        """The data an epoll_event carries: the script's fd (mapped back on return), ptr, u32 or u64."""
        for name in ("fd", "ptr", "u32", "u64"):
            if expr.get(name) is not None:
                return value_of(expr.get(name), where)
        raise BadInput(f"{where}: an epoll_event names fd=, ptr=, u32= or u64=: {expr}")

    def _epoll_ctl(self, event, where):
        epfd = self._fd(event.args[0], where)
        operation = value_of(event.args[1], where)
        fd = self._fd(event.args[2], where)
        spec = event.args[3]
        if is_null(spec):
            return _check(_libc.epoll_ctl(epfd, operation, fd, None)), ""
        if not isinstance(spec, StructValue):
            raise BadInput(f"{where}: expected an epoll_event like {{events=EPOLLIN, fd=4}}, found {spec}")
        request = _EpollEvent(value_of(spec.get("events"), where) & 0xFFFFFFFF, self._epoll_data(spec, where))
        return _check(_libc.epoll_ctl(epfd, operation, fd, ctypes.byref(request))), ""

    def _epoll_wait(self, event, where):
        epfd = self._fd(event.args[0], where)
        count = value_of(event.args[2], where)
        ready = (_EpollEvent * max(count, 1))()
        result = _check(_libc.epoll_wait(epfd, ready, count, value_of(event.args[3], where)))
        spec = event.args[1]
        if isinstance(spec, StructValue) and result > 0:
            want = value_of(spec.get("events"), where) & 0xFFFFFFFF
            if ready[0].events != want:
                return result, f"epoll_event events is {ready[0].events:#x}, expected {want:#x}"
            data = self._epoll_data(spec, where)
            if ready[0].data != data:
                return result, f"epoll_event data is {ready[0].data}, expected {data}"
        return result, ""

    # -- pipes and files ------------------------------------------------------------
    def _pipe(self, event, where):
        names = event.args[0]
        if not (isinstance(names, ListValue) and len(names.items) == 2):
            raise BadInput(f"{where}: pipe() takes the two script fds it makes: pipe([5, 6])")
        read_end, write_end = os.pipe()
        self._register(event, RawFd(read_end), value_of(names.items[0], where))
        self._register(event, RawFd(write_end), value_of(names.items[1], where))
        return 0, ""

    def _splice(self, event, where):
        for offset in (event.args[1], event.args[3]):
            if not is_null(offset):
                raise BadInput(f"{where}: splice() offsets other than NULL are not supported")
        return os.splice(self._fd(event.args[0], where), self._fd(event.args[2], where),
                         value_of(event.args[4], where), flags=value_of(event.args[5], where)), ""

    def _open(self, event, where):
        path = event.args[0]
        if not isinstance(path, Bytes):
            raise BadInput(f"{where}: open() takes a \"path\"")
        mode = value_of(event.args[2], where) if len(event.args) > 2 else 0o644
        fd = os.open(os.fsdecode(path.data), value_of(event.args[1], where), mode)
        return self._register(event, RawFd(fd)), ""

    def _sendfile(self, event, where):
        offset = event.args[2]
        start = None if is_null(offset) else value_of(offset, where)
        return os.sendfile(self._fd(event.args[0], where), self._fd(event.args[1], where), start,
                           value_of(event.args[3], where)), ""


SYSCALLS = {call.name: call for call in (
    Syscall("socket", 3, KernelApp._socket, waits=NEVER),
    Syscall("bind", 3, KernelApp._bind, waits=NEVER),
    Syscall("listen", 2, KernelApp._listen, waits=NEVER),
    Syscall("accept", 3, KernelApp._accept),
    Syscall("connect", 3, KernelApp._connect),
    Syscall("shutdown", 2, KernelApp._shutdown, waits=NEVER),
    Syscall("close", 1, KernelApp._close, waits=ON_LINGER),
    Syscall("setsockopt", 5, KernelApp._setsockopt, optional=1, waits=NEVER),
    Syscall("getsockopt", 5, KernelApp._getsockopt, waits=NEVER),
    Syscall("fcntl", 3, KernelApp._fcntl, optional=1, waits=ON_LOCK),
    Syscall("ioctl", 3, KernelApp._ioctl, waits=NEVER),
    Syscall("read", 3, KernelApp._read),
    Syscall("readv", 3, KernelApp._readv),
    Syscall("recv", 4, KernelApp._recv),
    Syscall("recvfrom", 6, KernelApp._recvfrom),
    Syscall("recvmsg", 3, KernelApp._recvmsg),
    Syscall("write", 3, KernelApp._write),
    Syscall("writev", 3, KernelApp._writev),
    Syscall("send", 4, KernelApp._send),
    Syscall("sendto", 6, KernelApp._sendto),
    Syscall("sendmsg", 3, KernelApp._sendmsg),
    Syscall("poll", 3, KernelApp._poll, waits=ON_TIMEOUT),
    Syscall("epoll_create", 1, KernelApp._epoll_create, waits=NEVER),
    Syscall("epoll_ctl", 4, KernelApp._epoll_ctl, waits=NEVER),
    Syscall("epoll_wait", 4, KernelApp._epoll_wait, waits=ON_TIMEOUT),
    Syscall("pipe", 1, KernelApp._pipe, waits=NEVER),
    Syscall("splice", 6, KernelApp._splice, waits=ALWAYS),
    Syscall("open", 3, KernelApp._open, optional=1, waits=ALWAYS),
    Syscall("sendfile", 4, KernelApp._sendfile, waits=ALWAYS),
)}
