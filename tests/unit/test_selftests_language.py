"""The selftests' language, parsed and evaluated without privileges or namespaces.

Parser-only checks: each construct the kernel's selftests use reads into the
events the runner acts on, and a malformed one is a one-line error naming
file:line:column. The Fast Open cookies are checked against the values the
kernel's own selftest runner and the oracle wrapper publish for their
addresses (computed by the kernel there, not by tcplab).
"""

from __future__ import annotations

import pytest

from lab.judge import tcpinfo
from lab.judge.code import CodeError, Interpreter, check_block
from lab.live.kernelapp import validate_syscall
from lab.script.values import constant
from lab.tcp.numbering import Side
from lab.errors import BadInput
from lab.tcp.fastopen import cookie
from lab.script.events import ELLIPSIS, Bytes, IpInfo, ListValue, Name, Option, StructValue
from lab.script.lexer import ScriptSyntaxError
from lab.script.parser import parse
from lab.live.ksft import defines_for, script_families

KEY = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"


def one(line: str, defines=None):
    return parse(line + "\n", "t.pkt", defines).events[0]


@pytest.mark.parametrize("key,source,destination,expected", [
    (KEY, "192.0.2.1", "192.168.0.1", "3021b9d889017eeb"),  # ksft_runner.sh's TFO_COOKIE
    ("0-0-0-0", "192.0.2.1", "192.168.0.1", "b7c12350a90dc8f5"),  # its TFO_COOKIE_ZERO
    (KEY, "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "c1d1e9742a47a9bc"),
    ("0-0-0-0", "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "82af1a8f9a205c34"),
    (KEY, "198.19.0.2", "198.18.0.1", "5da7feecd351e67a"),  # the oracle wrapper's, on the lab's plan
])
def test_fastopen_cookie_is_the_kernels(key, source, destination, expected):
    assert cookie(key, source, destination) == expected


def test_a_wrong_key_gives_another_cookie():
    assert cookie("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d5", "192.0.2.1", "192.168.0.1") != "3021b9d889017eeb"


def test_defines_replace_words_as_packetdrill_lexes_them():
    defines = defines_for(4)
    event = one("+0 > S. 0:0(0) ack 1 <mss 1460,FO TFO_COOKIE,nop,nop>", defines)
    assert event.options[1] == Option("FO", (defines["TFO_COOKIE"],))
    call = one("+0 recvmsg(4, {msg_control=[{cmsg_level=CMSG_LEVEL_IP, cmsg_type=2, cmsg_data=0}]}, 0) = 0",
               defines)
    assert call.args[1].get("msg_control").items[0].get("cmsg_level") == Name("SOL_IP")
    assert one("+0 write(4, ..., N) = N", {"N": "100"}).args[2] == 100


def test_an_undefined_cookie_name_is_bad_input():
    with pytest.raises(ScriptSyntaxError, match=r"t.pkt:1:\d+: a Fast Open cookie"):
        one("+0 > S. 0:0(0) ack 1 <FO TFO_COOKIE>")


def test_ip_fields_flags_and_urgent_pointer():
    event = one("+0 > [ect0] SEWA 0:0(0) urg 5 <FOEXP>")
    assert event.ip == IpInfo(ecn="ect0") and event.flags == "SEWA" and event.urgent == 5
    assert event.options == (Option("FOEXP", ("",)),)
    assert one("+0 < [tos 0x3,flowlabel 0x12] - 1:1(0) win 9").ip == IpInfo(tos=3, flowlabel=0x12)
    assert one("+0 < - 1:1(0) win 9").flags == ""
    with pytest.raises(ScriptSyntaxError, match="ect01"):
        one("+0 < [ect01] S 0:0(0) win 9")
    assert one("+0 > [ect0] .5 1:1(0) ack 1").flags == ".EA"  # ACE 5: ECE and AE
    assert one("+0 > P6. 1:1(0) ack 1").flags == "P.WA"
    with pytest.raises(ScriptSyntaxError, match="conflicting TCP flags 'E5.'"):
        one("+0 > E5. 1:1(0) ack 1")


def test_a_cookie_that_begins_with_digits_is_one_word():
    assert one("+0 > S. 0:0(0) ack 1 <FO 5da7feecd351e67a>").options[0].values == ("5da7feecd351e67a",)


def test_structs_iovecs_strings_and_notes():
    event = one('+0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 2000}], msg_flags=0}, 0) = 0x2 (flags O_RDWR)')
    assert event.args[1] == StructValue((("msg_name", ELLIPSIS),
                                         ("msg_iov", ListValue((StructValue(((None, ELLIPSIS), (None, 2000))),))),
                                         ("msg_flags", 0)))
    assert event.result == 2 and event.errno is None
    strings = one('+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, "\\xa1\\x01" "ab\\0", 5) = 0')
    assert strings.args[3] == Bytes(b"\xa1\x01ab\x00")
    assert one("+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\", 0) = -1 (Invalid Argument)").errno is None


def test_option_lines_without_values_and_with_comments():
    script = parse("--send_omit_free\t// do not reuse send buffers\n--mss=1000\n0 close(3) = 0\n", "t.pkt")
    assert script.options == {"send_omit_free": "", "mss": "1000"}


def test_families_as_the_kernel_runner_chooses_them():
    assert script_families("t.pkt", "0 close(3) = 0\n") == (4, 6)
    assert script_families("t.pkt", "--ip_version=ipv6\n") == (6,)
    with pytest.raises(BadInput, match="unsupported --ip_version"):
        script_families("t.pkt", "--ip_version=ipv4-mapped-ipv6\n")


def test_uapi_constants_python_lacks():
    assert constant("TCP_INQ", "x") == 36 and constant("SO_ZEROCOPY", "x") == 60
    assert constant("MSG_ZEROCOPY", "x") == 0x4000000 and constant("SIOCINQ", "x") == 0x541B
    with pytest.raises(BadInput, match="unknown constant 'NO_SUCH_THING'"):
        constant("NO_SUCH_THING", "x")


def test_the_syscall_table_checks_names_and_arguments():
    validate_syscall(one("+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT, fd=4}) = 0"), "t.pkt")
    with pytest.raises(BadInput, match="t.pkt:1: unsupported syscall 'frobnicate'"):
        validate_syscall(one("+0 frobnicate(3) = 0"), "t.pkt")
    with pytest.raises(BadInput, match=r"sendto\(\) takes 6 arguments, the line gives 4"):
        validate_syscall(one("+0 sendto(3, ..., 10, 0) = 10"), "t.pkt")


def _fails(code: str, values: dict) -> str | None:
    return Interpreter().run(check_block(code, "t.pkt:1"), values, 1)


def test_assertion_messages_are_formatted_within_bounds():
    block = check_block("assert tcpi_snd_cwnd == 20, 'cwnd=%d' % tcpi_snd_cwnd;\\\n", "t.pkt:3")
    assert Interpreter().run(block, {"tcpi_snd_cwnd": 5}, 3).endswith(": cwnd=5")
    assert Interpreter().run(block, {"tcpi_snd_cwnd": 20}, 3) is None
    with pytest.raises(CodeError, match="t.pkt:3: the string '%99999d'"):
        check_block("assert 1, '%99999d' % tcpi_rtt", "t.pkt:3")
    with pytest.raises(CodeError, match=r"the call open\(\) is not allowed"):
        check_block("assert 1, open('/etc/passwd')", "t.pkt:3")


def test_a_syn_writes_its_isn_and_later_numbers_count_from_it():
    kernel = Side()
    kernel.learn(5000, 1234)  # the kernel's SYN-ACK, written "S. 1234:1234(0)"
    assert kernel.script(5000, syn=True) == 1234
    assert kernel.script(5001) == 1 and kernel.live(1) == 5001


def test_untimed_commands_run_where_they_stand():
    script = parse("`./defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+1 close(3) = 0\n"
                   "`/tmp/sysctl_restore_${PPID}.sh`\n", "t.pkt")
    first, *_, last = script.events
    assert (first.timing.start, first.timing.relative) == (0.0, False)  # packetdrill's init command
    assert (last.timing.start, last.timing.relative) == (0.0, True)  # its cleanup command: after the events
    assert script.length == 1.0


def test_accecn_option_as_the_kernel_would_send_it():
    from lab.judge.verify import differences, observe, scapy_options
    from lab.tcp.packets import Segment, build_frame, parse_frame

    line = one("+0 > . 1:1(0) ack 1 <ECN e1b 1 ceb 1000 e0b 1,nop>")
    sent = Segment("198.18.0.1", "198.18.0.2", 8080, 40000, 0x10, 1, 1, 100,
                   options=scapy_options(line.options, Side()))
    seen = observe(parse_frame(build_frame("02:00:00:00:00:01", "02:00:00:00:00:02", sent)), Side(), Side(), ">")
    assert seen.options == line.options
    wrong = one("+0 > . 1:1(0) ack 1 <ECN e1b 1 ceb 999 e0b 1,nop>")
    assert list(map(str, differences(wrong, seen))) == ["options: expected <ECN e1b 1 ceb 999 e0b 1,nop>, "
                                                        "got <ECN e1b 1 ceb 1000 e0b 1,nop>"]


def test_a_blocks_names_read_the_sockets_values_before_the_kernels_constants():
    """SK_MEMINFO_RCVBUF is also an index of the SK_MEMINFO enum (1): the block means the socket's rcvbuf."""
    assert _fails("assert SK_MEMINFO_RCVBUF == 131072", {"SK_MEMINFO_RCVBUF": 131072}) is None
    assert _fails("assert SK_MEMINFO_RCVBUF == 131072", {"SK_MEMINFO_RCVBUF": 1}) is not None
    assert _fails("assert tcpi_state == TCP_ESTABLISHED", {"tcpi_state": 1}) is None
    assert _fails("assert tcpi_state == TCP_ESTABLISHED", {"tcpi_state": 7}) is not None


def test_tcp_info_names_are_the_fields_it_decodes_and_nothing_else():
    """A %{ }% block may name exactly the fields tcp_info yields (Linux 6.18's, AccECN counters included);
    a misspelt one is bad input when the script loads, not a failure blamed on the kernel."""
    import socket

    with socket.socket() as sock:  # an unconnected TCP socket has tcp_info too
        values = tcpinfo.tcp_info(sock)
    assert set(values) - set(tcpinfo.MEMINFO) == tcpinfo.FIELDS
    assert {"tcpi_received_ce_bytes", "tcpi_ecn_mode", "tcpi_total_rto_time"} <= tcpinfo.FIELDS
    with pytest.raises(CodeError, match="t.pkt:5: tcpi_delivered_ce_byte is not a struct tcp_info field"):
        check_block("assert tcpi_delivered_ce_byte == 0", "t.pkt:5")
