"""``tcplab selftests`` and the language the kernel's selftests speak, against the real kernel.

tests/selftests/ holds small scripts written the way the kernel's selftests
write them (Fast Open cookies named by the runner's -D defines, ECN
codepoints, MSG_ZEROCOPY completions on the error queue); tests/scripts/
socket_api.pkt, gso_mss.pkt and gso_window.pkt run with the other feature scripts. Each
feature also has a wrong expectation here that must fail, naming what differed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lab.script.settings import Settings
from lab.live.ksft import Selftest, run_selftest, script_families

from helpers import judged, tcplab

HERE = Path(__file__).parent
SELFTESTS = HERE / "selftests"
SCRIPTS = HERE / "scripts"


@pytest.mark.xdist_group("batches")  # a batch of its own, not beside another
def test_the_folder_passes_as_json():
    done = tcplab("selftests", str(SELFTESTS), "--json", "-j", "2", "--allow-shell", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)
    assert {(entry["script"], entry["family"]) for entry in results} == {
        (path.name, family) for path in SELFTESTS.glob("*.pkt")
        for family in script_families(str(path), path.read_text())}
    assert all(entry["result"] == "pass" and entry["reason"] == "" for entry in results), results


def test_ktap_as_the_kernel_runner_prints_it(tmp_path):
    shutil.copy(SELFTESTS / "zerocopy.pkt", tmp_path)
    (tmp_path / "accecn.pkt").write_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 100 <ECN e1b 1 ceb 0 e0b 1,uto 9>\n")
    (tmp_path / "shell.pkt").write_text("--ip_version=ipv6\n`echo hello`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    done = tcplab("selftests", str(tmp_path), "--ktap", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr  # skips are not failures
    # A run made again uncrowded (a busy machine) adds a diagnostic line and finishes after the others.
    diagnostics = [line for line in done.stdout.splitlines()[2:-1] if line.startswith("# ")]
    assert all("made again uncrowded" in line for line in diagnostics), diagnostics
    lines = [line for line in done.stdout.splitlines() if line not in diagnostics]
    assert lines[:2] == ["TAP version 13", "1..5"]
    assert lines[2].startswith("ok 1 accecn.pkt ipv4 # SKIP ") and "accecn.pkt:2:" in lines[2] and "'uto'" in lines[2]
    assert lines[3] == lines[2].replace("ok 1 accecn.pkt ipv4", "ok 2 accecn.pkt ipv6")  # the same reason
    assert lines[4].startswith("ok 3 shell.pkt ipv6 # SKIP ") and "shell.pkt:2" in lines[4] and "--allow-shell" in lines[4]
    assert [line.split(" ", 2)[:2] for line in lines[5:7]] == [["ok", "4"], ["ok", "5"]]
    assert sorted(line.split(" ", 2)[2] for line in lines[5:7]) == ["zerocopy.pkt ipv4", "zerocopy.pkt ipv6"]
    assert lines[-1] == "# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:3 error:0"


def test_a_failure_is_not_ok_with_its_report(tmp_path):
    text = (SELFTESTS / "zerocopy.pkt").read_text().replace("ee_info=0", "ee_info=7")
    (tmp_path / "wrong.pkt").write_text(text)
    done = tcplab("selftests", str(tmp_path), "--ktap", "--ip-version", "4", "--junit", str(tmp_path / "j.xml"))
    assert done.returncode == 1
    assert "not ok 1 wrong.pkt ipv4" in done.stdout
    assert "# " + str(tmp_path / "wrong.pkt") in done.stdout and "ee_info is 0, expected 7" in done.stdout
    assert "<failure" in (tmp_path / "j.xml").read_text()


def run_mutated(tmp_path: Path, source: Path, old: str, new: str, family: int = 4):
    """Run ``source`` with one expectation changed, as the selftests runner does; return the result."""
    text = source.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {source.name}"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new))
    return judged(Selftest(str(path)), family, Settings(allow_shell=True), work=run_selftest)


MUTATIONS = [
    # (script, original text, wrong expectation, what the reason must say)
    (SELFTESTS / "fastopen.pkt", "sackOK,FO TFO_COOKIE,nop,nop>", "sackOK,FO TFO_COOKIE_ZERO,nop,nop>", "options: expected"),
    (SELFTESTS / "fastopen.pkt", "TCPI_OPT_SYN_DATA) != 0", "TCPI_OPT_SYN_DATA) == 0", "tcpi_options=0x"),
    (SELFTESTS / "fastopen.pkt", "> S. 1234:1234(0) ack 999011", "> S. 1234:1234(0) ack 999001", "ack: expected 999001"),
    (SELFTESTS / "fastopen.pkt", "sackOK,FOEXP TFO_COOKIE>", "sackOK,FO TFO_COOKIE>", "got <mss 1460,nop,nop,sackOK,FOEXP"),
    (SELFTESTS / "ecn.pkt", "> [ect0] P.", "> [ect1] P.", "IP ECN field: expected [ect1], got [ect0]"),
    (SCRIPTS / "pipes_and_files.pkt", "readv(4, [{..., 100}, {..., 300}], 2) = 400",
     "readv(4, [{..., 100}, {..., 300}], 2) = 500", "readv() returned 400, expected 500"),
    (SCRIPTS / "pipes_and_files.pkt", "splice(4, NULL, 6, NULL, 1000, 0) = 100",
     "splice(4, NULL, 6, NULL, 1000, 0) = 99", "splice() returned 100, expected 99"),
    (SCRIPTS / "pipes_and_files.pkt", "sendfile(4, 7, [0], 50) = 50", "sendfile(4, 7, [0], 50) = 40",
     "sendfile() returned 50, expected 40"),
    (SELFTESTS / "ecn.pkt", "> [noecn] E.", "> [noecn] .", "flags: expected ., got .E"),
    (SELFTESTS / "ecn.pkt", "[noecn,ttl 64]", "[noecn,ttl 65]", "IP ttl: expected 65, got 64"),
    (SELFTESTS / "ecn.pkt", "tcpi_received_ce_bytes == 100", "tcpi_received_ce_bytes == 99",
     "(tcpi_received_ce=1, tcpi_received_ce_bytes=100"),  # an AccECN counter, read past byte 248
    (SELFTESTS / "zerocopy.pkt", "ee_code=SO_EE_CODE_ZEROCOPY_COPIED", "ee_code=0", "ee_code is 1, expected 0"),
    (SELFTESTS / "zerocopy.pkt", "msg_flags=MSG_ERRQUEUE", "msg_flags=0", "msg_flags is 0x2000, expected 0"),
    (SCRIPTS / "socket_api.pkt", "SIOCINQ, [1000]", "SIOCINQ, [999]", "ioctl value is [1000], expected [999]"),
    (SCRIPTS / "socket_api.pkt", "cmsg_data=600", "cmsg_data=601", "cmsg 0: data is 600, expected 601"),
    (SCRIPTS / "socket_api.pkt", "revents=POLLIN}", "revents=POLLOUT}", "revents is 0x1, expected 0x4"),
    (SCRIPTS / "socket_api.pkt", "{events=EPOLLIN, fd=4}, 1, 0) = 1", "{events=EPOLLOUT, fd=4}, 1, 0) = 1",
     "epoll_event events is 0x1, expected 0x4"),
    (SCRIPTS / "socket_api.pkt", "= 0x2 (flags O_RDWR)", "= 0x3 (flags O_RDWR)", "fcntl() returned 2, expected 3"),
    (SCRIPTS / "socket_api.pkt", "= -1 EFAULT (Bad address)", "= -1 EINVAL (Bad address)",
     "errno: expected -1 EINVAL, got -1 EFAULT"),
    (SCRIPTS / "gso_mss.pkt", "> . 1:1(0) ack 10001", "> . 1:1(0) ack 1001", "ack: expected 1001, got 10001"),
    (SCRIPTS / "gso_mss.pkt", "tcpi_rcv_mss == 1000", "tcpi_rcv_mss == 1460", "rcv_mss=1000"),
    (SCRIPTS / "gso_window.pkt", "ack 1 win 161", "ack 1 win 158", "win: expected 158, got 161"),  # 158: a
    # super-segment laid out with its whole payload in page fragments, as the lab sent it before
    (SCRIPTS / "fastopen_client.pkt", "> S 0:1000(1000) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8,FO abcd1234",
     "> S 0:1000(1000) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8,FO 1234abcd", "FO abcd1234,nop,nop>"),
    (SCRIPTS / "ts_tick_urgent.pkt", "urg 1 <nop,nop,TS val 300 ecr 200>", "urg 1 <nop,nop,TS val 400 ecr 200>",
     "TS val: expected 400, got "),  # about 300: the kernel's ms clock may read 299
    (SCRIPTS / "ts_tick_urgent.pkt", "> PU. 1:2(1) ack 1 urg 1", "> PU. 1:2(1) ack 1 urg 2", "urg: expected 2, got 1"),
    (SCRIPTS / "ts_tick_urgent.pkt", "msg_iov(2)=[{..., 100}, {..., 200}], msg_flags=0}, 0) = 300",
     "msg_iov(2)=[{..., 100}, {..., 200}], msg_flags=0}, 0) = 200", "sendmsg() returned 300, expected 200"),
    (SCRIPTS / "accecn_syn.pkt", "] S7 0:0(0)", "] S 0:0(0)", "flags: expected S.E, got S."),
    (SCRIPTS / "md5_option.pkt", "+.01 state SYN_RECV", "+.01 state ESTABLISHED",
     "state: expected ESTABLISHED, the kernel reports SYN_RECV"),
    (SELFTESTS / "icmp_pmtu_ipv4.pkt", "mtu 1200", "mtu 1300", "length: expected 1160, got 1260"),
    (SELFTESTS / "icmp_pmtu_ipv6.pkt", "mtu 1280", "mtu 1380", "length: expected 1220, got 1320"),
    (SELFTESTS / "timestamping.pkt", "scm_nsec=60000000", "scm_nsec=30000000",
     "the timestamp reads 0.06"),
    (SELFTESTS / "timestamping.pkt", "ee_data=999", "ee_data=1000", "ee_data is 999, expected 1000"),
    (SELFTESTS / "option_lines.pkt", "--mtu=1400", "--mtu=1300", "got <mss 1260"),
    (SELFTESTS / "option_lines.pkt", "state LISTEN port 9090", "state LISTEN port 8080",
     "state: expected LISTEN, the kernel reports CLOSED"),
    (SELFTESTS / "link_mtu.pkt", "ip link set dev tun0 mtu 9000", "ip link set dev tun0 mtu 4000",
     "got <mss 3960"),
]


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("script,old,new,reason", MUTATIONS, ids=lambda v: v.name if isinstance(v, Path) else None)
def test_a_wrong_expectation_fails(tmp_path, script, old, new, reason, family):
    if family not in script_families(str(script), script.read_text()):
        pytest.skip(f"{script.name} is written for one family")
    result = run_mutated(tmp_path, script, old, new, family)
    assert result.result == "fail", result
    assert reason in result.reason + result.report, result.report or result.reason


def test_a_slow_machine_expects_failures(tmp_path):
    text = (SELFTESTS / "zerocopy.pkt").read_text().replace("ee_info=0", "ee_info=7")
    (tmp_path / "wrong.pkt").write_text(text)
    done = tcplab("selftests", str(tmp_path), "--ktap", "--ip-version", "4",
                  env={**os.environ, "KSFT_MACHINE_SLOW": "yes"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok 1 wrong.pkt ipv4 # XFAIL" in done.stdout
    assert done.stdout.splitlines()[-1] == "# Totals: pass:0 fail:0 xfail:1 xpass:0 skip:0 error:0"


def test_slow_widens_the_selftests_timing_and_keeps_judging_content(tmp_path):
    """selftests --slow (an emulated guest kernel): a line 30 ms off its time passes, a wrong ack still fails."""
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    text = (SCRIPTS / "passive_open.pkt").read_text()
    (shifted / "late.pkt").write_text(text.replace("   +0 > S. 0:0(0) ack 1", "+.03 > S. 0:0(0) ack 1", 1))
    assert "+.03 > S. 0:0(0) ack 1" in (shifted / "late.pkt").read_text()
    strict = tcplab("selftests", str(shifted), "--ip-version", "4")
    assert strict.returncode == 1, strict.stdout
    slow = tcplab("selftests", str(shifted), "--ip-version", "4", "--slow")
    assert slow.returncode == 0 and "PASS late.pkt ipv4" in slow.stdout, slow.stdout + slow.stderr
    (shifted / "late.pkt").write_text(text.replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2", 1))
    wrong = tcplab("selftests", str(shifted), "--ip-version", "4", "--slow")
    assert wrong.returncode == 1, wrong.stdout
