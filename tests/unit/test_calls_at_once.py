"""Which syscalls run on the timeline's own thread: only those that cannot wait for the kernel.

A call wrongly judged unable to block would stall the whole timeline inside the kernel; one wrongly judged
able to block only costs a worker's hand-over. Plain sockets in this process stand in for the script's
descriptors: the decision reads only their flags and options (no namespace, no privileges).
"""

from __future__ import annotations

import socket
import struct

import pytest

from lab.live.kernelapp import KernelApp
from lab.script.events import SyscallEvent
from lab.script.parser import parse


@pytest.fixture
def app():
    kernel_app = KernelApp("unused", 4, ("198.18.0.1", 8080), ("198.19.0.2", 40000), "calls.pkt")
    kernel_app.fds[3] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    kernel_app.fds[4] = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    yield kernel_app
    kernel_app.close()


def call(line: str) -> SyscallEvent:
    (event,) = [event for event in parse(f"0 {line}\n").events if isinstance(event, SyscallEvent)]
    return event


@pytest.mark.parametrize("line", [
    "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
    "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
    "bind(3, ..., ...) = 0",
    "listen(3, 1) = 0",
    "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0",
    "read(4, ..., 100) = -1 EAGAIN (Resource temporarily unavailable)",
    "accept(4, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)",
    "poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0",
    "close(3) = 0",
])
def test_a_call_that_cannot_wait_runs_at_once(app, line):
    assert app.cannot_block(call(line)), line


@pytest.mark.parametrize("line", [
    "read(3, ..., 100) = 0",
    "accept(3, ..., ...) = 4",
    "connect(3, ..., ...) = 0",
    "write(3, ..., 100) = 100",
    "poll([{fd=3, events=POLLIN, revents=0}], 1, 100) = 0",
    "fcntl(3, F_SETLKW, 0) = 0",
    "read(9, ..., 100) = 0",  # no such descriptor: the worker reports it as for any call
    "sendfile(3, 4, NULL, 100) = 100",
])
def test_a_call_that_may_wait_goes_to_a_worker(app, line):
    assert not app.cannot_block(call(line)), line


def test_close_waits_only_with_a_linger_time(app):
    blocking = app.fds[3]
    blocking.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5))
    assert not app.cannot_block(call("close(3) = 0"))
    blocking.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # an abort: no wait
    assert app.cannot_block(call("close(3) = 0"))


def test_a_call_run_at_once_reports_like_a_worker(app):
    running = app.start(call("read(4, ..., 100) = -1 ENOTCONN (Transport endpoint is not connected)"), at_once=True)
    assert running.done.is_set() and running.began.is_set()
    (outcome,) = running.box
    assert (outcome.result, outcome.errno) == (-1, "ENOTCONN")  # the kernel's answer, from this thread
    assert outcome.returned_at >= running.began_at > 0
