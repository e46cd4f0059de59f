"""tcp_info of a socket, and a restricted evaluator for ``%{ assert ... }%``.

The struct layout is Linux's ``struct tcp_info`` (include/uapi/linux/tcp.h);
``SK_MEMINFO_*`` names read the socket's SO_MEMINFO, as in packetdrill.
Script code is untrusted: it is parsed with ``ast`` and interpreted node by
node; only assertions over comparisons, arithmetic and boolean logic on
``tcpi_*`` and ``SK_MEMINFO_*`` values, ``TCP_*`` constants and numbers are
allowed, with an assertion message that is a value or a ``'...%d...' % value``
format (widths bounded). Nothing is passed to ``eval`` or ``exec``.
"""

from __future__ import annotations

import ast
import operator
import re
import socket
import struct

from lab.tcp.uapi import CONSTANTS as UAPI
from lab.errors import BadInput

_U8 = ("state", "ca_state", "retransmits", "probes", "backoff", "options")
_U32_A = ("rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets",
          "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv", "pmtu", "rcv_ssthresh",
          "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss", "reordering", "rcv_rtt", "rcv_space",
          "total_retrans")
_U64_A = ("pacing_rate", "max_pacing_rate", "bytes_acked", "bytes_received")
_U32_B = ("segs_out", "segs_in", "notsent_bytes", "min_rtt", "data_segs_in", "data_segs_out")
_U64_B = ("delivery_rate", "busy_time", "rwnd_limited", "sndbuf_limited")
_U32_C = ("delivered", "delivered_ce")
_U64_C = ("bytes_sent", "bytes_retrans")
_U32_D = ("dsack_dups", "reord_seen", "rcv_ooopack", "snd_wnd", "rcv_wnd", "rehash")
_U16_E = ("total_rto", "total_rto_recoveries")
_U32_E = ("total_rto_time",)
# AccECN (Linux 6.18, 280 bytes in all), then one u32 of bit fields: ecn_mode:2, accecn_opt_seen:2,
# accecn_fail_mode:4, options2:24 (include/uapi/linux/tcp.h; the first field in the low bits on x86)
_U32_F = ("received_ce", "delivered_e1_bytes", "delivered_e0_bytes", "delivered_ce_bytes", "received_e1_bytes",
          "received_e0_bytes", "received_ce_bytes", "_ecn_bits")

_LAYOUT = [("6B", _U8), ("2B", ("_wscale", "_bits")), ("24I", _U32_A), ("4Q", _U64_A), ("6I", _U32_B),
           ("4Q", _U64_B), ("2I", _U32_C), ("2Q", _U64_C), ("6I", _U32_D), ("2H", _U16_E), ("I", _U32_E),
           ("8I", _U32_F)]
_FORMAT = "=" + "".join(fmt for fmt, _ in _LAYOUT)
_NAMES = [name for _, names in _LAYOUT for name in names]
_BIT_FIELDS = ("snd_wscale", "rcv_wscale", "delivery_rate_app_limited", "fastopen_client_fail", "ecn_mode",
               "accecn_opt_seen", "accecn_fail_mode", "options2")
FIELDS = frozenset(f"tcpi_{name}" for name in (*_NAMES, *_BIT_FIELDS) if not name.startswith("_"))

# The names a %{ }% block may use besides tcpi_* and SK_MEMINFO_*: the kernel's constants (lab/tcp/uapi.py,
# TCP states and TCP_CA_* among them), and two tcpi_options bits newer than the headers it was generated from.
CONSTANTS = {**UAPI, "TCPI_OPT_USEC_TS": 64, "TCPI_OPT_TFO_CHILD": 128}


MEMINFO = ("SK_MEMINFO_RMEM_ALLOC", "SK_MEMINFO_RCVBUF", "SK_MEMINFO_WMEM_ALLOC", "SK_MEMINFO_SNDBUF",
           "SK_MEMINFO_FWD_ALLOC", "SK_MEMINFO_WMEM_QUEUED", "SK_MEMINFO_OPTMEM", "SK_MEMINFO_BACKLOG",
           "SK_MEMINFO_DROPS")  # the u32 array SO_MEMINFO fills, in this order (linux/sock_diag.h)
SO_MEMINFO = 55


def tcp_info(sock: socket.socket) -> dict[str, int]:
    """The names a %{ }% block reads: tcp_info as ``tcpi_*`` (fields this kernel lacks read as 0), and
    SO_MEMINFO as ``SK_MEMINFO_*``."""
    return {**_tcp_info(sock), **meminfo(sock)}


def meminfo(sock: socket.socket) -> dict[str, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * len(MEMINFO)).ljust(4 * len(MEMINFO), b"\0")
    return dict(zip(MEMINFO, struct.unpack(f"={len(MEMINFO)}I", raw), strict=True))


def _tcp_info(sock: socket.socket) -> dict[str, int]:
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, struct.calcsize(_FORMAT))
    raw = raw.ljust(struct.calcsize(_FORMAT), b"\0")
    values = dict(zip(_NAMES, struct.unpack(_FORMAT, raw), strict=True))
    wscale = values.pop("_wscale")
    bits = values.pop("_bits")
    values["snd_wscale"] = wscale & 0x0F
    values["rcv_wscale"] = wscale >> 4
    values["delivery_rate_app_limited"] = bits & 1
    values["fastopen_client_fail"] = (bits >> 1) & 3
    ecn_bits = values.pop("_ecn_bits")
    values["ecn_mode"] = ecn_bits & 3
    values["accecn_opt_seen"] = (ecn_bits >> 2) & 3
    values["accecn_fail_mode"] = (ecn_bits >> 4) & 0xF
    values["options2"] = ecn_bits >> 8
    return {f"tcpi_{name}": value for name, value in values.items()}


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.BitAnd: operator.and_,
           ast.BitOr: operator.or_, ast.LShift: operator.lshift, ast.RShift: operator.rshift}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}


LIMIT = 2**64  # no constant or intermediate value beyond this: untrusted code must not exhaust memory


class CodeError(BadInput):
    """Script code outside the allowed subset."""


# A %-format directive a message may use: flags, a width and precision of at most 3 digits, no '*'.
_FORMAT_DIRECTIVE = re.compile(r"%(%|[-+ #0]*\d{0,3}(\.\d{0,3})?[diouxXeEfFgGs])")


def _check_message(node: ast.AST, where: str) -> None:
    """An assertion's message: a string, a value, or ``'...%d...' % value`` (or a tuple of values)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
            and isinstance(node.left.value, str):
        text = node.left.value
        if "%" in _FORMAT_DIRECTIVE.sub("", text):
            raise CodeError(f"{where}: the message {text!r} holds a % directive tcplab does not format "
                            "(flags, a width and precision up to 3 digits, one of diouxXeEfFgGs)")
        values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        for value in values:
            _check_expression(value, where)
        return
    _check_expression(node, where)


def _check_expression(root: ast.AST, where: str) -> None:
    for node in ast.walk(root):
        if isinstance(node, (ast.Load, ast.Compare, ast.BinOp, ast.UnaryOp, ast.BoolOp,
                             ast.And, ast.Or, *_BINARY, *_COMPARE, *_UNARY)):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
                node.value, bool) and abs(node.value) <= LIMIT:
            continue
        if isinstance(node, ast.Name) and (node.id in FIELDS or node.id in CONSTANTS or node.id in MEMINFO):
            continue
        if isinstance(node, ast.Name) and node.id.startswith("tcpi_"):
            raise CodeError(f"{where}: {node.id} is not a struct tcp_info field (tcplab knows those of Linux "
                            "6.18, up to the AccECN counters); check its spelling in include/uapi/linux/tcp.h")
        name = node.id if isinstance(node, ast.Name) else (
            repr(node.value)[:24] if isinstance(node, ast.Constant) else type(node).__name__)
        raise CodeError(f"{where}: {name!r} is not allowed in %{{ }}% blocks (only tcpi_* and SK_MEMINFO_* "
                        "values, TCP_* constants, numbers up to 2**64, comparisons and arithmetic)")


def check_code(code: str, where: str) -> list[ast.Assert]:
    """Parse a %{ }% block; only ``assert`` statements over allowed expressions pass."""
    text = code.strip()
    if text.endswith("\\"):  # a last line continued into the block's end, as packetdrill's Python accepts
        text = text[:-1]
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise CodeError(f"{where}: %{{ }}% block is not valid: {error.msg}") from None
    for statement in tree.body:
        if not isinstance(statement, ast.Assert):
            raise CodeError(f"{where}: only 'assert' statements are allowed in %{{ }}% blocks")
        _check_expression(statement.test, where)
        if statement.msg is not None:
            _check_message(statement.msg, where)
    return list(tree.body)


def _evaluate(node: ast.AST, names: dict[str, int]):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):  # the socket's own values first: SK_MEMINFO_* also name their enum's indexes
        if node.id in names:
            return names[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise KeyError(node.id)
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        if isinstance(node.op, (ast.LShift, ast.RShift)) and not 0 <= right <= 64:
            raise ArithmeticError(f"shift by {right}")
        result = _BINARY[type(node.op)](left, right)
        if abs(result) > LIMIT:
            raise ArithmeticError("a value beyond 2**64")
        return result
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(value, names) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, names)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise TypeError(type(node).__name__)  # unreachable after check_code


def _message(node: ast.AST, names: dict[str, int]) -> str:
    """An assertion's message, formatted (check_code bounded its directives)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
        values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        try:
            return node.left.value % tuple(_evaluate(value, names) for value in values)
        except (TypeError, ValueError, KeyError, ArithmeticError) as error:
            return f"{node.left.value!r} cannot be formatted: {error}"
    try:
        return str(_evaluate(node, names))
    except (KeyError, TypeError, ArithmeticError):
        return ast.unparse(node)


def failed_assertion(statements: list[ast.Assert], names: dict[str, int]) -> str | None:
    """The first assertion that does not hold, described with its values; None if all hold."""
    for statement in statements:
        try:
            holds = _evaluate(statement.test, names)
        except KeyError as missing:
            return f"{missing.args[0]} has no value here"
        except (ArithmeticError, TypeError, ValueError) as error:  # 1/0, ~1.5, an overflow
            return f"assert {ast.unparse(statement.test)} cannot be evaluated: {error}"
        if not holds:
            used = sorted({n.id for n in ast.walk(statement.test) if isinstance(n, ast.Name) and n.id in names})
            values = ", ".join(f"{name}={names[name]}" for name in used)
            message = f"assert {ast.unparse(statement.test)} failed ({values})"
            if statement.msg is not None:
                message += f": {_message(statement.msg, names)}"
            return message
    return None
