"""packetdrill's ``%{ }%`` blocks, interpreted by a restricted evaluator (script code is untrusted).

packetdrill hands every block to one Python process after the run, each with
the tcp_info recorded at its line, so a name a block assigns is there for the
blocks after it. tcplab runs a block at its line, with the same rule for
names, over a subset of Python that cannot reach the host: the block is
parsed with ``ast`` and interpreted node by node, never by ``eval`` or
``exec``.

The subset:
- statements: ``assert`` (with a message), ``name = ...`` and ``name += ...``
  (not a tcp_info field, a constant or a builtin), ``if``/``elif``/``else``,
  ``pass``, and ``print(...)`` (its text goes to the run's notes);
- expressions: numbers, strings, tuples, arithmetic (``**`` up to 64),
  comparisons (``in`` a tuple too), ``and``/``or``/``not``, ``x if c else
  y``, ``'...%d...' % values``, and the calls ``abs``, ``min``, ``max``,
  ``int``, ``float``, ``round``, ``bool``, ``len``, ``str``, ``hex``;
- names: ``tcpi_*`` (struct tcp_info), ``SK_MEMINFO_*`` (SO_MEMINFO), the
  kernel's constants (``TCP_CA_Open``, ``TCPI_OPT_SACK``...) and the names
  the script's blocks assign.
No loops, no function definitions, no imports, attributes or subscripts: a
block ends, and no value grows past 2**64 or a string past 4096 characters.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from functools import cache

from lab.errors import BadInput
from lab.judge.tcpinfo import CONSTANTS, FIELDS, MEMINFO

LIMIT = 2**64  # no number beyond this: untrusted code must not exhaust memory or time
TEXT_LIMIT = 4096  # characters in a string value
PRINTED_LIMIT = 64  # print() lines one run keeps

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.BitAnd: operator.and_,
           ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.LShift: operator.lshift,
           ast.RShift: operator.rshift, ast.Pow: operator.pow}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
CALLS = {"abs": abs, "min": min, "max": max, "int": int, "float": float, "round": round, "bool": bool,
         "len": len, "str": str, "hex": hex}
_EXPRESSION_NODES = (ast.Load, ast.Compare, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.IfExp, ast.Tuple,
                     ast.And, ast.Or, *_BINARY, *_COMPARE, *_UNARY)
# A %-format directive a string may use: flags, a width and precision of at most 3 digits, no '*'.
_FORMAT_DIRECTIVE = re.compile(r"%(%|[-+ #0]*\d{0,3}(\.\d{0,3})?[diouxXeEfFgGs])")
_RESERVED = FIELDS | set(CONSTANTS) | set(MEMINFO) | set(CALLS) | {"print"}


class CodeError(BadInput):
    """Script code outside the allowed subset."""


class _Failed(Exception):
    """An assertion that does not hold, or a value that cannot be computed: the run fails at the line."""


@dataclass(frozen=True)
class Block:
    """A checked %{ }% block."""

    statements: tuple[ast.stmt, ...]
    reads_socket: bool  # whether it reads tcp_info or SO_MEMINFO (then it needs a connected socket)


def code_names(script) -> frozenset[str]:
    """The names a script's %{ }% blocks assign: any block may read them (from the moment one is assigned)."""
    from lab.script.events import CodeEvent

    return _assigned(tuple(event.code for event in script.events if isinstance(event, CodeEvent)))


@cache
def _assigned(blocks: tuple[str, ...]) -> frozenset[str]:
    """Cached: a run asks for its script's names in its check before the run and again as it starts."""
    names = set()
    for code in blocks:
        try:
            tree = ast.parse(_text(code))
        except SyntaxError:
            continue  # check_block says so, at its line
        names |= _stored_names(tree)
    return frozenset(names)


def _stored_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}


@cache
def check_block(code: str, where: str, assignable: frozenset[str] = frozenset()) -> Block:
    """Parse a block and check it against the subset; ``assignable``: the names the script's blocks assign.
    Cached: the run checks each block again at its line, after the script's check before the run."""
    try:
        tree = ast.parse(_text(code))
    except SyntaxError as error:
        raise CodeError(f"{where}: %{{ }}% block is not valid Python: {error.msg}") from None
    assignable = assignable | _stored_names(tree)
    for statement in tree.body:
        _check_statement(statement, where, assignable)
    reads = any(isinstance(node, ast.Name) and (node.id in FIELDS or node.id in MEMINFO) for node in ast.walk(tree))
    return Block(tuple(tree.body), reads)


def _text(code: str) -> str:
    text = code.strip()
    return text.removesuffix("\\")  # a last line continued into the block's end


def _check_statement(statement: ast.stmt, where: str, assignable: set[str]) -> None:
    if isinstance(statement, ast.Assert):
        _check_expression(statement.test, where, assignable)
        if statement.msg is not None:
            _check_expression(statement.msg, where, assignable)
    elif isinstance(statement, (ast.Assign, ast.AugAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        for target in targets:
            if not isinstance(target, ast.Name):
                raise CodeError(f"{where}: only a plain name can be assigned in %{{ }}% blocks")
            if target.id in _RESERVED or target.id.startswith(("tcpi_", "SK_MEMINFO_")):
                raise CodeError(f"{where}: {target.id} names a tcp_info value, a constant or a builtin: "
                                "assign another name")
        _check_expression(statement.value, where, assignable)
    elif isinstance(statement, ast.If):
        _check_expression(statement.test, where, assignable)
        for inner in (*statement.body, *statement.orelse):
            _check_statement(inner, where, assignable)
    elif isinstance(statement, ast.Expr) and _is_print(statement.value):
        for argument in statement.value.args:
            _check_expression(argument, where, assignable)
    elif not isinstance(statement, ast.Pass):
        raise CodeError(f"{where}: {type(statement).__name__.lower()} statements are not allowed in %{{ }}% "
                        "blocks (assert, assignments, if, pass and print() are)")


def _is_print(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
            and not node.keywords)


def _check_expression(root: ast.AST, where: str, assignable: set[str]) -> None:
    for node in ast.walk(root):
        if isinstance(node, _EXPRESSION_NODES):
            continue
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and (
                isinstance(node.value, (int, float)) and abs(node.value) <= LIMIT
                or isinstance(node.value, str) and len(node.value) <= TEXT_LIMIT):
            if isinstance(node.value, str) and "%" in _FORMAT_DIRECTIVE.sub("", node.value):
                raise CodeError(f"{where}: the string {node.value!r} holds a % directive tcplab does not format "
                                "(flags, a width and precision up to 3 digits, one of diouxXeEfFgGs)")
            continue
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in CALLS and not node.keywords:
                continue
            raise CodeError(f"{where}: the call {ast.unparse(node.func)[:40]}() is not allowed in %{{ }}% blocks "
                            f"(only {', '.join(CALLS)}, without keyword arguments)")
        if isinstance(node, ast.Name) and (node.id in FIELDS or node.id in CONSTANTS or node.id in MEMINFO
                                           or node.id in assignable or node.id in CALLS):
            continue
        if isinstance(node, ast.Name) and node.id.startswith("tcpi_"):
            raise CodeError(f"{where}: {node.id} is not a struct tcp_info field (tcplab knows those of Linux "
                            "6.18, up to the AccECN counters); check its spelling in include/uapi/linux/tcp.h")
        if isinstance(node, ast.Name):
            raise CodeError(f"{where}: {node.id!r} has no value: not a tcpi_* or SK_MEMINFO_* value, a constant, "
                            "or a name a %{ }% block assigns")
        name = repr(node.value)[:24] if isinstance(node, ast.Constant) else type(node).__name__
        raise CodeError(f"{where}: {name!r} is not allowed in %{{ }}% blocks (numbers up to 2**64, strings, "
                        f"tuples, arithmetic, comparisons, and the calls {', '.join(CALLS)})")


@dataclass
class Interpreter:
    """One run's blocks: the names they assign live from one block to the next, as in packetdrill."""

    variables: dict[str, object] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)

    def run(self, block: Block, values: dict[str, int], line: int) -> str | None:
        """Run ``block`` with the socket's ``values``; the failure (an assertion, a value that cannot be
        computed) as text, or None."""
        names = {**self.variables, **values}
        try:
            for statement in block.statements:
                self._execute(statement, names, line)
        except _Failed as failure:
            return str(failure)
        return None

    def _execute(self, statement: ast.stmt, names: dict, line: int) -> None:
        if isinstance(statement, ast.Assert):
            if not _value(statement.test, names):
                used = sorted({n.id for n in ast.walk(statement.test) if isinstance(n, ast.Name) and n.id in names})
                shown = ", ".join(f"{name}={names[name]}" for name in used)
                message = f"assert {ast.unparse(statement.test)} failed ({shown})"
                if statement.msg is not None:
                    message += f": {_shown(statement.msg, names)}"
                raise _Failed(message)
        elif isinstance(statement, ast.Assign):
            value = _value(statement.value, names)
            for target in statement.targets:
                names[target.id] = self.variables[target.id] = value
        elif isinstance(statement, ast.AugAssign):
            if statement.target.id not in names:
                raise _Failed(f"{statement.target.id} has no value here")
            value = _bounded(_BINARY[type(statement.op)], names[statement.target.id], _value(statement.value, names),
                             statement.op)
            names[statement.target.id] = self.variables[statement.target.id] = value
        elif isinstance(statement, ast.If):
            for inner in statement.body if _value(statement.test, names) else statement.orelse:
                self._execute(inner, names, line)
        elif isinstance(statement, ast.Expr) and len(self.printed) < PRINTED_LIMIT:
            text = " ".join(str(_value(argument, names)) for argument in statement.value.args)
            self.printed.append(f"line {line}: {text[:TEXT_LIMIT]}")


def _value(node: ast.AST, names: dict):
    """An expression's value (check_block allowed only what is handled here)."""
    try:
        return _evaluate(node, names)
    except KeyError as missing:
        raise _Failed(f"{missing.args[0]} has no value here") from None
    except (ArithmeticError, TypeError, ValueError) as error:  # 1/0, ~1.5, an overflow, 'a' < 1
        raise _Failed(f"{ast.unparse(node)} cannot be evaluated: {error}") from None


def _evaluate(node: ast.AST, names: dict):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):  # the socket's own values first: SK_MEMINFO_* also name their enum's indexes
        if node.id in names:
            return names[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise KeyError(node.id)
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(element, names) for element in node.elts)
    if isinstance(node, ast.BinOp):
        return _bounded(_BINARY[type(node.op)], _evaluate(node.left, names), _evaluate(node.right, names), node.op)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(value, names) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.IfExp):
        return _evaluate(node.body if _evaluate(node.test, names) else node.orelse, names)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, names)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _bounded_result(CALLS[node.func.id](*(_evaluate(argument, names) for argument in node.args)))
    raise TypeError(type(node).__name__)


def _bounded(function, left, right, op: ast.operator):
    """A binary operation that cannot exhaust memory: no string or tuple repeated, shifts and powers bounded."""
    if isinstance(op, ast.Mult) and not (isinstance(left, (int, float)) and isinstance(right, (int, float))):
        raise TypeError("only numbers multiply")
    if isinstance(op, (ast.LShift, ast.RShift, ast.Pow)) and not (isinstance(right, int) and 0 <= right <= 64):
        raise ArithmeticError(f"{'power' if isinstance(op, ast.Pow) else 'shift'} by {right}")
    if isinstance(op, ast.Pow) and not abs(left) <= LIMIT:
        raise ArithmeticError("a value beyond 2**64")
    if isinstance(op, ast.Mod) and isinstance(left, str) and "%" in _FORMAT_DIRECTIVE.sub("", left):
        raise ValueError(f"{left[:40]!r} holds a % directive tcplab does not format")  # a width made at run time
    return _bounded_result(function(left, right))


def _bounded_result(result):
    if isinstance(result, (int, float)) and not isinstance(result, bool) and abs(result) > LIMIT:
        raise ArithmeticError("a value beyond 2**64")
    if isinstance(result, (str, tuple)) and len(result) > TEXT_LIMIT:
        raise ValueError(f"a value longer than {TEXT_LIMIT}")
    return result


def _shown(node: ast.AST, names: dict) -> str:
    """An assertion's message (its formatting bounded by check_block), or its source when it cannot be computed."""
    try:
        return str(_evaluate(node, names))
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):
            return f"{node.left.value!r} cannot be formatted: {error}"
        return ast.unparse(node)
