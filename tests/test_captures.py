"""Fixtures and offline checks: deterministic captures, verify, diff, and other tools' view.

The fixtures in captures/ were recorded from the kernel by ``tcplab capture
regen``; here they are checked offline against their exercises (and must
fail against the wrong one), as a plain user with no namespaces at all,
and by tshark, which must find nothing malformed, valid checksums, and the
same handshake numbers as the lab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from helpers import as_nobody, tcplab
from lab.capture.check import check_capture
from lab.capture.pcapfile import read_segments
from lab.course.catalogue import find
from lab.script.settings import Settings

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
FIXTURES = sorted(CAPTURES.glob("*.pcapng"))
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (make test installs it as root)")
# Exercises whose wire traces differ: each fixture must fail against the other's script, where they differ.
WRONG = [
    # The three-segment close: the server's FIN carries the ACK the four-segment close sends alone.
    ("close-3-segments", "close-4-segments", "flags: expected ., got F."),
    ("close-4-segments", "close-3-segments", "flags: expected F., got ."),
    # The passive open's SYN-ACK is the kernel's own, not the one the active open's script has the lab send.
    ("handshake-passive", "handshake-active",
     "options: expected <mss 1460,sackOK,nop,nop,nop,wscale 7>, got <mss 1460,nop,nop,sackOK,nop,wscale 10>"),
    # The lab closes first there; close-passive waits for the kernel's FIN.
    ("close-active", "close-passive", "the lab sent a segment where the script expects the kernel's"),
    ("time-wait", "time-wait-new-syn", "timing: the segment arrived at"),
    # Linear timeouts (syn-retries) expect a retransmission the exponential backoff has not sent yet.
    ("syn-retries-exponential", "syn-retries", "the client sent nothing; expected this segment by"),
]


def exercise_of(fixture: Path) -> str:
    return fixture.stem.removesuffix("-ipv6")


def test_every_script_exercise_has_fixtures_in_both_families():
    from lab.course.catalogue import exercises

    names = {e.name for e in exercises() if not e.experiment}
    assert {exercise_of(f) for f in FIXTURES} == names
    assert len(FIXTURES) == 2 * len(names)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.stem)
def test_fixture_matches_its_exercise_offline(fixture):
    result = check_capture(find(exercise_of(fixture)).runnable(), read_segments(str(fixture)), str(fixture),
                           Settings())
    assert result.passed, result.failure
    assert result.family == (6 if fixture.stem.endswith("-ipv6") else 4)


@pytest.mark.parametrize(("recorded", "against", "words"), WRONG, ids=[f"{a}-vs-{b}" for a, b, _ in WRONG])
def test_fixture_fails_against_the_wrong_exercise(recorded, against, words):
    result = check_capture(find(against).runnable(), read_segments(str(CAPTURES / f"{recorded}.pcapng")),
                           "x", Settings())
    assert not result.passed
    assert words in " | ".join([result.failure.message, *result.failure.fields]), result.failure


def test_verify_runs_as_a_plain_user_without_namespaces():
    fixture = str(CAPTURES / "close-3-segments.pcapng")
    good = as_nobody("verify", fixture, "--against", "close-3-segments", block_userns=True)
    assert good.returncode == 0, good.stderr
    assert "PASS" in good.stdout
    bad = as_nobody("verify", fixture, "--against", "close-4-segments", "--json", block_userns=True)
    assert bad.returncode == 1, bad.stderr
    (entry,) = json.loads(bad.stdout)
    assert entry["passed"] is False and entry["failure"]["fields"] == ["flags: expected ., got F."]  # see WRONG


def test_verify_junit_has_a_testcase_per_capture_and_the_failure_names_its_capture(tmp_path):
    """Two captures against one script: two testcases, each named by the capture it checked, and the failing
    one's report names the capture it read."""
    import xml.etree.ElementTree as ET

    junit = tmp_path / "verify.xml"
    wrong = str(CAPTURES / "close-3-segments.pcapng")
    result = tcplab("verify", str(CAPTURES / "half-close.pcapng"), wrong, "--against", "half-close", "--junit",
                    str(junit))
    assert result.returncode == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    passing, failing = suite.findall("testcase")
    assert [(case.get("classname"), case.get("name")) for case in (passing, failing)] == [
        ("tcplab.verify.half-close", "half-close.pcapng"), ("tcplab.verify.half-close", "close-3-segments.pcapng")]
    assert passing.find("failure") is None
    assert f"capture:  {wrong}" in failing.find("failure").text


def test_regeneration_is_byte_identical(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        result = tcplab("capture", "regen", "close-3-segments", "tw-reuse", "-j", "1", "--folder", str(folder))
        assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(p.name for p in first.iterdir())
    assert names == ["close-3-segments-ipv6.pcapng", "close-3-segments.pcapng", "tw-reuse-ipv6.pcapng",
                     "tw-reuse.pcapng"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def check_line(fixture: Path, shown: Path | None = None) -> str:
    """What ``regen --check`` must say of a fixture whose segments this kernel reproduces: "same" when it was
    made on this kernel build by this tcplab version, else which of the two differs (read by hand from the
    fixture's section header and from uname)."""
    from lab import __version__

    comment = section_header_options(fixture)[1]
    made_by, made_on = comment.split()[1], re.search(r"kernel: Linux (\S+);", comment)[1]
    differs = ([f"kernel {os.uname().release}, was {made_on}"] if os.uname().release != made_on else []) + \
        ([f"tcplab {__version__}, was {made_by}"] if __version__ != made_by else [])
    shown = shown or fixture
    return f"unchanged {shown}: only the environment differs ({'; '.join(differs)})" if differs else f"same {shown}"


def test_regen_check_on_another_kernel_build_passes_and_writes_nothing():
    """Fixtures made on another build of this kernel (close-3-segments on -v657) or on this one: at most the
    environment differs, and nothing is written."""
    names = ["close-3-segments", "tw-reuse"]
    before = {path: path.stat().st_mtime_ns for name in names for path in (CAPTURES / f"{name}.pcapng",
                                                                           CAPTURES / f"{name}-ipv6.pcapng")}
    result = tcplab("capture", "regen", "--check", *names, "-j", "2", "--folder", str(CAPTURES))
    assert result.returncode == 0, result.stdout + result.stderr
    said = [re.sub(r" \(made again uncrowded: .*\)$", "", line) for line in result.stdout.splitlines()]  # under load
    assert sorted(said) == sorted(check_line(path) for path in before), result.stdout
    assert {path: path.stat().st_mtime_ns for path in before} == before


def test_regen_check_names_a_changed_segment_and_regen_rewrites_only_that_fixture(tmp_path):
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    from lab.capture.pcapfile import section_comments
    from lab.capture.pcapng import pcapng_writer

    shutil.copy(CAPTURES / "close-3-segments-ipv6.pcapng", tmp_path)
    tampered = tmp_path / "close-3-segments.pcapng"
    committed = str(CAPTURES / "close-3-segments.pcapng")
    packets = rdpcap(committed)
    packets[-1][TCP].ack += 1  # the client's last ACK
    del packets[-1][TCP].chksum
    with pcapng_writer(str(tampered), section_comments(committed)[0], "tcplab") as writer:
        writer.linktype = 1
        for packet in packets:
            writer.write(packet)
    written = tampered.read_bytes()
    check = tcplab("capture", "regen", "--check", "close-3-segments", "-j", "2", "--folder", str(tmp_path))
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"changed {tampered}:" in check.stdout
    assert re.search(r"^  -client > \. 102:102\(0\) ack 3 .*#last-ack", check.stdout, re.M), check.stdout
    assert re.search(r"^  \+client > \. 102:102\(0\) ack 2 .*#last-ack", check.stdout, re.M), check.stdout
    untouched = tmp_path / "close-3-segments-ipv6.pcapng"
    assert check_line(CAPTURES / untouched.name, untouched) in check.stdout.splitlines(), check.stdout
    assert tampered.read_bytes() == written  # --check writes nothing
    regen = tcplab("capture", "regen", "close-3-segments", "-j", "2", "--folder", str(tmp_path))
    assert regen.returncode == 0, regen.stdout + regen.stderr
    assert f"wrote {tampered} (changed)" in regen.stdout
    assert f"unchanged {untouched}" in regen.stdout  # the same, or only the environment differs
    assert untouched.read_bytes() == (CAPTURES / "close-3-segments-ipv6.pcapng").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["close-3-segments-ipv6.pcapng", "close-3-segments.pcapng"]


def section_header_options(path: Path) -> dict[int, str]:
    """The pcapng section header's options (code -> text), read by hand."""
    data = path.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a" and data[8:12] == b"\x4d\x3c\x2b\x1a"  # little-endian
    (length,) = struct.unpack_from("<I", data, 4)
    offset, options = 24, {}
    while offset < length - 4:
        code, size = struct.unpack_from("<HH", data, offset)
        if code == 0:
            break
        options[code] = data[offset + 4:offset + 4 + size].decode()
        offset += 4 + (size + 3) // 4 * 4
    return options


def test_fixture_records_kernel_version_sysctls_and_script_lines():
    fixture = CAPTURES / "orphan-retries.pcapng"
    comment = section_header_options(fixture)[1]
    assert "kernel: Linux " in comment and "tcplab " in comment
    assert "net.ipv4.tcp_orphan_retries=1" in comment  # the script's own sysctl line
    assert "net.ipv4.tcp_keepalive_time=" in comment  # a fresh namespace's default
    assert all(item.comment.startswith("orphan-retries.pkt:") for item in read_segments(str(fixture)))


def test_capture_diff_shows_behaviour_not_noise(tmp_path):
    same = tcplab("capture", "diff", str(CAPTURES / "close-active.pcapng"), str(CAPTURES / "close-active-ipv6.pcapng"))
    assert same.returncode == 0 and same.stdout == "the captures agree segment by segment\n", same.stdout
    differs = tcplab("capture", "diff", str(CAPTURES / "close-4-segments.pcapng"),
                     str(CAPTURES / "close-3-segments.pcapng"))
    assert differs.returncode == 1
    # The one difference: the server's ACK of the client's FIN (ack 102), sent alone in the four-segment close
    # and carried by the server's FIN in the three-segment one.
    changed = [line for line in differs.stdout.splitlines()[2:] if line.startswith(("-", "+"))]
    assert len(changed) == 1 and changed[0].startswith("-server > . 1:1(0) ack 102 "), differs.stdout


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    command = [TSHARK, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
               "-o", "tcp.relative_sequence_numbers:TRUE", "-T", "fields", "-E", "separator=|"]
    for field in fields:
        command += ["-e", field]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


FRAME_FIELDS = ("frame.number", "_ws.malformed", "tcp.checksum.status", "ip.checksum.status", "tcp.flags.syn",
                "tcp.flags.ack", "tcp.seq_raw", "tcp.ack_raw")  # one tshark run per file reads them all


def tshark_problems(rows: list[list[str]]) -> list[str]:
    """Malformed frames and bad checksums, as tshark sees them (rows of FRAME_FIELDS)."""
    problems = []
    for number, malformed, tcp_status, ip_status, *_ in rows:
        if malformed:
            problems.append(f"frame {number}: malformed")
        if tcp_status != "1" or ip_status not in ("", "1"):
            problems.append(f"frame {number}: checksum status tcp={tcp_status} ip={ip_status}")
    return problems


@needs_tshark
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.stem)
def test_tshark_reads_the_fixture_cleanly_and_agrees_on_every_segment(fixture):
    """tshark and tcplab read the same flags and absolute numbers in every frame (not only handshakes)."""
    rows = tshark_fields(fixture, *FRAME_FIELDS)
    assert tshark_problems(rows) == []
    ours = [(item.index, "S" in item.segment.flag_text, "." in item.segment.flag_text, item.segment.seq,
             item.segment.ack) for item in read_segments(str(fixture))]
    theirs = [(int(number), syn in ("1", "True"), ack_flag in ("1", "True"), int(seq), int(ack))
              for number, _, _, _, syn, ack_flag, seq, ack in rows]
    assert ours and ours == theirs


@needs_tshark
def test_the_tshark_check_catches_a_bad_checksum(tmp_path):
    data = bytearray((CAPTURES / "handshake-passive.pcapng").read_bytes())
    syn = read_segments(str(CAPTURES / "handshake-passive.pcapng"))[0]
    # The first Enhanced Packet Block's data starts 28 bytes into the block; flip the TCP checksum.
    epb = data.find(b"\x06\x00\x00\x00")
    tcp_checksum = epb + 28 + 14 + 20 + 16
    data[tcp_checksum] ^= 0xFF
    broken = tmp_path / "broken.pcapng"
    broken.write_bytes(bytes(data))
    assert syn.segment.flag_text == "S"
    assert tshark_problems(tshark_fields(broken, *FRAME_FIELDS)) == ["frame 1: checksum status tcp=0 ip=1"]  # 0 bad, 1 good


def test_crossing_segments_verify_in_either_order():
    """Two kernels' FINs that cross may reach a capture in either order; one endpoint's may not swap."""
    fixture = str(CAPTURES / "simultaneous-close-observed.pcapng")
    script = find("simultaneous-close-observed").runnable()
    captured = read_segments(fixture)
    fins = [i for i, item in enumerate(captured) if "F" in item.segment.flag_text]
    assert len(fins) == 2 and fins[1] == fins[0] + 1
    swapped = list(captured)
    swapped[fins[0]], swapped[fins[1]] = swapped[fins[1]], swapped[fins[0]]
    assert check_capture(script, swapped, fixture, Settings()).passed
    data_then_fin = list(captured)  # the client's data and the client's FIN: one sender, order matters
    client_data = next(i for i, item in enumerate(captured) if item.segment.payload and
                       item.segment.src == captured[fins[0]].segment.src)
    data_then_fin[client_data], data_then_fin[fins[0]] = data_then_fin[fins[0]], data_then_fin[client_data]
    assert not check_capture(script, data_then_fin, fixture, Settings()).passed
