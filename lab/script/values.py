"""What a syscall line's arguments mean before any call is made: numbers, constants, and the connection rule.

A script writes arguments as packetdrill does: ``3``, ``SOL_SOCKET``,
``O_RDWR|O_NONBLOCK``, ``htons(8080)``, ``[1]``. Constants come from Linux's
UAPI headers (lab/tcp/uapi.py), else Python's socket, os, fcntl and select.
The same values serve the live kernel application and the offline check, so
packetdrill's rule that a SYN begins a new connection after listen(),
connect() or a Fast Open send is decided here once for both.
"""

from __future__ import annotations

import errno as errno_codes
import fcntl
import os
import select
import socket

from lab.errors import BadInput
from lab.script.events import BitOr, Call, ListValue, Name, StructValue, SyscallEvent
from lab.tcp.uapi import CONSTANTS as UAPI

_EXTRA_CONSTANTS = {"NULL": 0}


def constant(name: str, where: str) -> int:
    """A symbolic constant: Linux's UAPI headers (a generated table), else Python's socket, os, fcntl, select."""
    if name in UAPI:
        return UAPI[name]
    for module in (socket, os, fcntl, select, errno_codes):
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


def is_null(expr) -> bool:
    return isinstance(expr, Name) and expr.name == "NULL"


def names_in(expr) -> list[str]:
    """The symbolic constants inside an argument (struct field names excluded)."""
    if isinstance(expr, Name):
        return [expr.name]
    if isinstance(expr, (BitOr, ListValue, Call)):
        parts = expr.parts if isinstance(expr, BitOr) else expr.items if isinstance(expr, ListValue) else expr.args
        return [name for part in parts for name in names_in(part)]
    if isinstance(expr, StructValue):
        return [name for _, value in expr.fields for name in names_in(value)]
    return []


def same_errno(expected: str, actual: str | None) -> bool:
    """Whether a script's errno name and the one a call gave are the same error: compared by number, as the
    kernel returns them, so that aliases match (ENOTSUP and EOPNOTSUPP are both 95 on Linux, EWOULDBLOCK is
    EAGAIN); a name this system does not know matches only itself."""
    if actual is None:
        return False
    number = getattr(errno_codes, expected, None)
    return expected == actual or (number is not None and number == getattr(errno_codes, actual, None))


def disconnects(address) -> bool:
    """Whether a sockaddr argument is AF_UNSPEC: connect() to it dissolves the association."""
    if isinstance(address, Name):
        return address.name == "AF_UNSPEC"
    return isinstance(address, StructValue) and address.get("sa_family") == Name("AF_UNSPEC")


FLAG_ARGUMENT = {"sendto": 3, "sendmsg": 2}  # where a send's flags are: sendto(fd, buf, len, flags, addr)


def begins_connection(event: SyscallEvent, where: str) -> bool:
    """packetdrill's rule: after listen(), connect() (not to AF_UNSPEC) or a Fast Open send (MSG_FASTOPEN),
    the next SYN begins a new connection under test."""
    if event.name == "listen":
        return True
    if event.name == "connect":
        return len(event.args) > 1 and not disconnects(event.args[1])
    index = FLAG_ARGUMENT.get(event.name)
    return index is not None and len(event.args) > index and bool(value_of(event.args[index], where)
                                                                   & UAPI["MSG_FASTOPEN"])
