"""Control messages a recvmsg() returned, compared with the ones a script expects.

A script writes ``msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR,
cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ...}}]``. As in
packetdrill, messages are compared in order: level, type, then the data by
its kind: a ``sock_extended_err`` field by field, ``scm_timestamping``
(a time in script seconds, within the timing tolerance; 0 is not checked),
an integer (``TCP_CM_INQ``), or bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from lab.errors import BadInput
from lab.script.events import ELLIPSIS, ListValue, StructValue

TIMESPEC = struct.Struct("=qq")

EXTENDED_ERR = ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_pad", "ee_info", "ee_data")
_EXTENDED_ERR_FORMAT = "=IBBBBII"


def _extended_err(data: bytes) -> dict[str, int]:
    return dict(zip(EXTENDED_ERR, struct.unpack_from(_EXTENDED_ERR_FORMAT, data), strict=True))


def _compare_data(index: int, expected, actual: bytes, value: Callable, clock: Callable) -> str:
    if expected is ELLIPSIS:
        return ""
    if isinstance(expected, StructValue) and expected.get("ee_errno") is not None:
        fields = _extended_err(actual)
        for name, want in expected.fields:
            if name in fields and value(want) != fields[name]:
                return f"cmsg {index}: {name} is {fields[name]}, expected {want}"
        return ""
    if isinstance(expected, StructValue) and expected.get("scm_sec") is not None:
        seconds, nanoseconds = value(expected.get("scm_sec")), value(expected.get("scm_nsec", 0))
        if not (seconds or nanoseconds):
            return ""
        stamp_seconds, stamp_nanoseconds = TIMESPEC.unpack_from(actual)
        return clock(index, seconds + nanoseconds / 1e9, stamp_seconds + stamp_nanoseconds / 1e9)
    number = value(expected)
    got = int.from_bytes(actual[:4], "little", signed=True) if len(actual) >= 4 else int.from_bytes(actual, "little")
    if number != got:
        return f"cmsg {index}: data is {got}, expected {expected}"
    return ""


def compare_control(expected, actual: list[tuple[int, int, bytes]], value: Callable, clock: Callable,
                    where: str) -> str:
    """What differs between the expected ``msg_control`` list and the messages received ("" when nothing).

    ``clock(index, script_seconds, realtime_stamp)`` judges a timestamp: "" or what is wrong.
    """
    if expected is ELLIPSIS:
        return ""
    if not isinstance(expected, ListValue):
        raise BadInput(f"{where}: msg_control is a list of {{cmsg_level=..., cmsg_type=..., cmsg_data=...}}")
    for index, (want, got) in enumerate(zip(expected.items, actual, strict=False)):
        if not isinstance(want, StructValue):
            raise BadInput(f"{where}: a control message is {{cmsg_level=..., cmsg_type=..., cmsg_data=...}}")
        level, kind, data = got
        if value(want.get("cmsg_level")) != level:
            return f"cmsg {index}: level is {level}, expected {want.get('cmsg_level')}"
        if value(want.get("cmsg_type")) != kind:
            return f"cmsg {index}: type is {kind}, expected {want.get('cmsg_type')}"
        problem = _compare_data(index, want.get("cmsg_data", ELLIPSIS), data, value, clock)
        if problem:
            return problem
    if len(actual) > len(expected.items):
        return f"received {len(actual)} control messages, expected {len(expected.items)}"
    if len(actual) < len(expected.items):
        return f"received only {len(actual)} control messages, expected {len(expected.items)}"
    return ""
