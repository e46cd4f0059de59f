"""``tcplab run`` end to end: exit codes, bad input, shell lines, captures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.utils import PcapNgReader

from helpers import SCRIPTS, as_nobody, tcplab




@pytest.fixture
def shared_dir():
    """A folder the unprivileged user 65534 can read too."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def test_passing_scripts_exit_0_in_both_families():
    result = tcplab("run", str(SCRIPTS / "passive_open.pkt"), str(SCRIPTS / "active_open.pkt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASS") == 4 and "4 passed, 0 failed" in result.stdout


def test_mismatch_exits_1_with_file_line_and_capture(shared_dir):
    text = (SCRIPTS / "passive_open.pkt").read_text().replace("+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1000")
    path = write(shared_dir, "wrong.pkt", text)
    result = tcplab("run", "--ip-version", "4", "--absolute", path)
    assert result.returncode == 1
    assert f"{path}:21: IPv4:" in result.stdout
    assert "differs:  ack: expected 1000, got 1001" in result.stdout
    assert "[absolute seq" in result.stdout
    capture = result.stdout.split("capture:")[1].split()[0]
    assert os.path.getsize(capture) > 0
    os.unlink(capture)


def test_syntax_error_exits_2_without_privileges_or_namespaces(shared_dir):
    """Parsing happens first: even where no namespace can be made, a bad script is exit 2, not 3."""
    path = write(shared_dir, "bad.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:0(0 ack 1\n")
    result = as_nobody("run", path, block_userns=True)
    assert result.returncode == 2, result
    assert result.stderr.strip() == f"tcplab: {path}:2:14: expected ')' in start:end(length), found 'ack'"


def test_shell_line_needs_the_flag(shared_dir):
    path = write(shared_dir, "shell.pkt", "`touch should-not-exist`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    result = tcplab("run", path)
    assert result.returncode == 2
    assert f"{path}:1: shell command `touch should-not-exist` needs --allow-shell" in result.stderr
    assert not (shared_dir / "should-not-exist").exists()


def test_allowed_shell_runs_in_the_kernel_namespace_from_the_script_folder(shared_dir):
    text = ("`sysctl -q net.ipv4.tcp_fin_timeout=7`\n"
            "0 `test $(cat /proc/sys/net/ipv4/tcp_fin_timeout) = 7 && touch ran-here`\n"
            "+0 `exit 3`\n")
    path = write(shared_dir, "shell.pkt", text)
    result = tcplab("run", "--allow-shell", "--ip-version", "4", path)
    assert (shared_dir / "ran-here").exists()
    assert result.returncode == 1
    assert f"{path}:3: IPv4: command exited with status 3" in result.stdout


@pytest.mark.parametrize(("text", "message"), [
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_NOPE, [1], 4) = 0\n",
     ":2: unknown constant 'SO_NOPE'"),
    ("0 frobnicate(3) = 0\n", ":1: unsupported syscall 'frobnicate'"),
    ("0 %{ import os }%\n", ":1: import statements are not allowed"),
    ("0 %{ assert __import__('os') }%\n", ":1: the call __import__() is not allowed"),
    ("`sysctl -q kernel.hostname=x`\n", ":1: sysctl kernel.hostname: only namespaced net.* settings"),
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 link rate 8000 burst 90\n", ":2: a link line shapes the link"),
    ("0 client socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 link rate 0 burst 90\n",
     ":2:14: the rate in bits per second must be more than 0"),
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 link lose server > S.\n", ":2: a link line shapes the link"),
    ("0 client socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 link lose client F.\n",
     ":2:21: expected '>' after 'client'"),
])
def test_bad_scripts_exit_2_with_file_and_line(shared_dir, text, message):
    path = write(shared_dir, "bad.pkt", text)
    result = tcplab("run", path)
    assert result.returncode == 2, result
    assert message in result.stderr and result.stderr.startswith(f"tcplab: {path}")
    assert result.stderr.count("\n") == 1


def test_missing_script_file():
    result = tcplab("run", "/nonexistent/x.pkt")
    assert result.returncode == 2 and "no such script file or exercise" in result.stderr


def test_capture_holds_both_directions_annotated_with_lines(tmp_path):
    pcap = tmp_path / "run.pcapng"
    script = SCRIPTS / "passive_open.pkt"
    result = tcplab("run", "--ip-version", "4", "--pcap", str(pcap), str(script))
    assert result.returncode == 0, result.stdout
    packets = list(PcapNgReader(str(pcap)))
    tcp = [p for p in packets if p.haslayer(TCP)]
    comments = [b"".join(getattr(p, "comments", None) or []).decode() for p in tcp]
    assert len(tcp) == 9  # 5 injected, 4 from the kernel
    assert all(f"{script}:" in comment for comment in comments)
    assert comments[0].endswith("< S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 8>")
    assert comments[1].endswith("> S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>")
    assert {p.direction for p in tcp} == {1, 2}


def test_ip_version_option_line_restricts_the_families(shared_dir):
    path = write(shared_dir, "v6.pkt", "--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    both = tcplab("run", "--no-ladder", path)
    assert both.returncode == 0 and "(IPv6)" in both.stdout and "(IPv4)" not in both.stdout
    assert "1 passed" in both.stdout
    skipped = tcplab("run", "--ip-version", "4", path)
    assert skipped.returncode == 0 and "SKIP" in skipped.stdout
    mapped = write(shared_dir, "mapped.pkt", "--ip_version=ipv4-mapped-ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    refused = tcplab("run", mapped)
    assert refused.returncode == 2 and "--ip_version=ipv4-mapped-ipv6" in refused.stderr


@pytest.mark.parametrize("command", ["run", "selftests"])
def test_failures_keeps_each_failing_runs_capture_and_page_for_ci(tmp_path, command):
    """--failures DIR: a failing run's capture and the HTML page that links it; a passing run leaves nothing."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    text = (SCRIPTS / "passive_open.pkt").read_text()
    (scripts / "good.pkt").write_text(text)
    (scripts / "bad.pkt").write_text(text.replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2", 1))
    kept = tmp_path / "failures"
    target = [str(scripts / "good.pkt"), str(scripts / "bad.pkt")] if command == "run" else [str(scripts)]
    result = tcplab(command, *target, "--ip-version", "4", "--failures", str(kept))
    assert result.returncode == 1, result.stdout + result.stderr
    assert sorted(path.name for path in kept.iterdir()) == ["bad-ipv4.html", "bad-ipv4.pcapng"]
    assert 'href="bad-ipv4.pcapng"' in (kept / "bad-ipv4.html").read_text()
    assert any(TCP in packet for packet in PcapNgReader(str(kept / "bad-ipv4.pcapng")))


def test_a_sysctl_this_kernel_lacks_fails_that_run_at_its_line_not_the_batch(tmp_path):
    """A setting a release does not have (tcp_tw_reuse_delay before 6.13) is that kernel's answer: the run fails at
    the line, naming the release, and the other scripts of the batch still run."""
    lacking = tmp_path / "lacking.pkt"
    lacking.write_text("`sysctl -q net.ipv4.tcp_no_such_setting=1`\n    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    result = tcplab("run", str(lacking), str(SCRIPTS / "passive_open.pkt"), "--ip-version", "4")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{lacking}:1: IPv4: sysctl 'net.ipv4.tcp_no_such_setting' does not exist on this kernel (Linux " \
        in result.stdout
    assert "PASS" in result.stdout and "1 passed, 1 failed" in result.stdout


def test_slow_judges_content_in_full_and_notes_the_timing_it_did_not_judge(tmp_path):
    """--slow (an emulated guest kernel): timing judged only to 100 ms, content as always."""
    result = tcplab("run", str(SCRIPTS / "passive_open.pkt"), "--ip-version", "4", "--slow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: slow machine (--slow): timing judged to 100 ms, content in full; the script's own tolerance is" \
        in result.stdout
    wrong = tmp_path / "wrong.pkt"
    wrong.write_text((SCRIPTS / "passive_open.pkt").read_text().replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2", 1))
    failed = tcplab("run", str(wrong), "--ip-version", "4", "--slow")
    assert failed.returncode == 1 and "ack: expected 2, got 1" in failed.stdout, failed.stdout
