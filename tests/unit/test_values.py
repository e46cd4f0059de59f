"""Syscall arguments read the same live and offline (lab/script/values.py), and with them packetdrill's rule
of when a SYN begins a new connection under test."""

from __future__ import annotations

import pytest

from lab.capture.check import connection_beginnings
from lab.errors import BadInput
from lab.script.parser import parse
from lab.script.values import begins_connection, same_errno, value_of

SCRIPT = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 connect(3, ..., ...) = -1 EINPROGRESS
+0 > S 0:0(0) <mss 1460>
+0 connect(3, AF_UNSPEC, ...) = 0
+0 > S 0:0(0) <mss 1460>
+0 sendto(3, ..., 0, 0x20000000, ..., ...) = -1 EINPROGRESS
+0 > S 0:0(0) <mss 1460>
"""


def test_listen_connect_and_a_fast_open_send_begin_a_connection_a_disconnect_does_not():
    script = parse(SCRIPT, "t.pkt")
    calls = {event.line: begins_connection(event, "t.pkt") for event in script.events if hasattr(event, "args")}
    assert calls == {1: False, 2: True, 4: False, 6: True}  # 0x20000000 is MSG_FASTOPEN, written as a number
    assert connection_beginnings(script) == {3, 7}


def test_values_read_as_packetdrill_writes_them():
    script = parse("0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR|SO_KEEPALIVE, [htons(1)], 4) = 0\n", "t.pkt")
    (call,) = script.events
    assert value_of(call.args[1], "t.pkt:1") == 1  # SOL_SOCKET
    assert value_of(call.args[2], "t.pkt:1") == 2 | 9  # SO_REUSEADDR | SO_KEEPALIVE
    assert value_of(call.args[3], "t.pkt:1") == 1
    with pytest.raises(BadInput, match="t.pkt:1: unknown constant 'NO_SUCH'"):
        value_of(parse("0 close(NO_SUCH) = 0\n", "t.pkt").events[0].args[0], "t.pkt:1")


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("EOPNOTSUPP", "ENOTSUP", True),  # both 95 on Linux (asm-generic/errno.h)
    ("EWOULDBLOCK", "EAGAIN", True),  # both 11
    ("EAGAIN", "EINTR", False),
    ("ECONNRESET", None, False),  # the call succeeded
    ("ENOSUCH", "ENOSUCH", True),  # a name this system does not know matches only itself
    ("ENOSUCH", "EPERM", False),
])
def test_an_errno_is_compared_by_number(expected, actual, same):
    assert same_errno(expected, actual) is same
