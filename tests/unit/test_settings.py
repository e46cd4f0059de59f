"""One table of options: a script's option lines first, command-line flags on top (packetdrill's config.c)."""

from __future__ import annotations

import pytest

from lab.script.settings import Settings, check_options, ignored_options, option_value
from lab.errors import BadInput
from lab.script.parser import parse


def test_tolerance_from_option_line_and_cli_flag():
    script = parse("--tolerance_usecs=20000\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "x.pkt")
    assert Settings().for_script(script).tolerance_usecs == 20000
    assert Settings(tolerance_usecs=1000).for_script(script).tolerance_usecs == 1000
    assert Settings().for_script(parse("", "y.pkt")).tolerance_usecs == 4000
    assert Settings().for_script(parse("", "y.pkt")).tolerance_percent == 12.5


@pytest.mark.parametrize("line, message", [
    ("--tolerance_usecs=fast", "option --tolerance_usecs=fast: not a number"),
    ("--server=elsewhere", "option --server=elsewhere: the values are unreachable"),
    ("--mtu=100", "option --mtu=100: a number from 576 to 9000"),
    ("--bind_port=70000", "option --bind_port=70000: a number from 1 to 65535"),
])
def test_a_bad_option_value_is_one_line_naming_the_file(line, message):
    with pytest.raises(BadInput, match=message) as caught:
        check_options(parse(line + "\n", "x.pkt"))
    assert str(caught.value).startswith("x.pkt: ")


def test_option_values_and_unknown_options():
    script = parse("--mss=1000\n--no_such_option=1\n", "x.pkt")
    assert option_value(script, "mss") == 1000
    assert option_value(script, "tcp_ts_tick_usecs") == 0
    assert ignored_options(script) == ["option line --no_such_option=1 is not supported by tcplab and was ignored"]


def test_a_script_crosses_to_a_worker_process_intact():
    """-j workers receive scripts pickled: ``...`` must stay the one ELLIPSIS the engine compares with ``is``."""
    import pickle

    from lab.script.events import ELLIPSIS

    script = parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 connect(3, ..., ...) = 0\n", "x.pkt")
    copy = pickle.loads(pickle.dumps(script))
    assert copy.events[1].args[1] is ELLIPSIS and copy == script


def test_the_option_table_makes_the_flags_of_run_verify_and_selftests():
    from lab.cli.run import run
    from lab.cli.selftests import selftests
    from lab.cli.verify import verify
    from lab.script.settings import OPTIONS

    flagged = {option.name for option in OPTIONS if option.flag_help}
    assert flagged == {"tolerance_usecs", "tolerance_percent"}
    for command in (run, verify, selftests):
        params = {param.name: param for param in command.params}
        assert flagged <= set(params), command.name
        for name in flagged:
            assert f"--{name}" in params[name].opts and f"--{name.replace('_', '-')}" in params[name].opts
