"""%{ }% blocks: packetdrill's Python, as far as tcplab's restricted evaluator runs it (lab/judge/code.py)."""

from __future__ import annotations

import pytest

from lab.judge.code import CodeError, Interpreter, check_block, code_names
from lab.script.parser import parse


def run(code: str, values: dict | None = None, interpreter: Interpreter | None = None,
        assignable: frozenset = frozenset()) -> str | None:
    return (interpreter or Interpreter()).run(check_block(code, "t.pkt:1", assignable), values or {}, 1)


def test_names_a_block_assigns_are_there_for_the_blocks_after_it():
    """As in packetdrill, whose blocks all run in one Python process: a value kept to compare later."""
    script = parse("0 %{ rto = tcpi_rto }%\n+1 %{ assert tcpi_rto == 2 * rto, tcpi_rto }%\n", "t.pkt")
    names = code_names(script)
    assert names == {"rto"}
    interpreter = Interpreter()
    assert run("rto = tcpi_rto", {"tcpi_rto": 200000}, interpreter, names) is None
    assert run("assert tcpi_rto == 2 * rto, tcpi_rto", {"tcpi_rto": 400000}, interpreter, names) is None
    assert run("assert tcpi_rto == 2 * rto, tcpi_rto", {"tcpi_rto": 300000}, interpreter, names) == \
        "assert tcpi_rto == 2 * rto failed (rto=200000, tcpi_rto=300000): 300000"


def test_if_augmented_assignment_calls_tuples_and_print():
    interpreter = Interpreter()
    code = """
total = 0
total += tcpi_snd_cwnd
if tcpi_ca_state in (TCP_CA_Open, TCP_CA_Disorder):
    kind = 'open'
elif tcpi_ca_state == TCP_CA_Loss:
    kind = 'loss'
else:
    pass
print('cwnd', total, kind, hex(tcpi_options), max(tcpi_rtt, 1000) // 1000)
assert abs(tcpi_rtt - 5000) <= 1000 and kind == 'open', 'rtt=%d' % tcpi_rtt
assert (tcpi_snd_cwnd if tcpi_ca_state == TCP_CA_Open else 0) == 10
"""
    values = {"tcpi_snd_cwnd": 10, "tcpi_ca_state": 0, "tcpi_options": 7, "tcpi_rtt": 5500}
    assert run(code, values, interpreter) is None
    assert interpreter.printed == ["line 1: cwnd 10 open 0x7 5"]
    assert run(code, {**values, "tcpi_rtt": 9000}, Interpreter()).endswith(": rtt=9000")


@pytest.mark.parametrize(("code", "message"), [
    ("import os", "import statements are not allowed"),
    ("for i in (1, 2): pass", "for statements are not allowed"),
    ("while 1: pass", "while statements are not allowed"),
    ("def f(): pass", "functiondef statements are not allowed"),
    ("assert open('/etc/passwd')", "the call open() is not allowed"),
    ("assert (1).__class__", "'Attribute' is not allowed"),
    ("assert (1, 2)[0]", "'Subscript' is not allowed"),
    ("assert [x for x in (1,)]", "'ListComp' is not allowed"),
    ("assert lambda: 1", "'Lambda' is not allowed"),
    ("tcpi_rto = 1", "tcpi_rto names a tcp_info value"),
    ("TCP_CA_Open = 1", "TCP_CA_Open names a tcp_info value, a constant or a builtin"),
    ("print = 1", "print names a tcp_info value, a constant or a builtin"),
    ("a, b = 1, 2", "only a plain name can be assigned"),
    ("assert max((1, 2), key=abs)", "the call max() is not allowed"),
    ("assert nobody == 1", "'nobody' has no value"),
    ("assert 1, '%99999d' % 1", "holds a % directive tcplab does not format"),
    ("assert 1 +", "is not valid Python"),
])
def test_what_the_subset_refuses_is_bad_input_at_its_line(code, message):
    with pytest.raises(CodeError, match="t.pkt:1: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        check_block(code, "t.pkt:1")


@pytest.mark.parametrize(("code", "failure"), [
    ("x = 'a' * 3", "only numbers multiply"),
    ("x = (1,) * 3", "only numbers multiply"),
    ("x = 2 ** 100", "power by 100"),
    ("x = 1 << 200", "shift by 200"),
    ("x = 4294967296 * 4294967296 * 2", "a value beyond 2**64"),
    ("x = '%%9999999d' % ()\nx = x % 5", "holds a % directive tcplab does not format"),
    ("x = 1 / 0", "division by zero"),
    ("x = int('9' * 5000 if 0 else '1') + later", "later has no value here"),
])
def test_a_value_that_would_grow_or_cannot_be_computed_fails_the_line(code, failure):
    """Untrusted code never allocates without bound: repetition, huge powers, shifts and run-time widths stop."""
    names = frozenset({"x", "later"})
    assert failure in run(code, {}, Interpreter(), names)


def test_print_output_is_kept_within_bounds():
    interpreter = Interpreter()
    for _ in range(100):
        run("print(tcpi_rtt)", {"tcpi_rtt": 1}, interpreter)
    assert len(interpreter.printed) == 64


def test_a_block_that_reads_no_socket_value_says_so():
    assert not check_block("x = 1", "t.pkt:1", frozenset({"x"})).reads_socket
    assert check_block("assert SK_MEMINFO_RCVBUF > 0", "t.pkt:1").reads_socket
    assert check_block("assert tcpi_rtt > 0", "t.pkt:1").reads_socket
