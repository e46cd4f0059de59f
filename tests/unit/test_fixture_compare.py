"""A regenerated fixture against the committed one: the kernel build and tcplab version are environment,
everything else (segments, the script lines they matched, the sysctls in force) must match. Hand-made
segments and headers: no kernel involved."""

from __future__ import annotations

import dataclasses

import pytest
from segments import capture, from_kernel, from_lab

from lab.capture.compare import CHANGED, ENVIRONMENT_ONLY, MISSING, SAME, Fixture, compare, compare_files
from lab.cli.capture import _made_again
from lab.judge.trace import LAB_LATE, Failure, RunResult


def header(kernel: str = "6.18.44-fc-v657", version: str = "0.1.0", reuse_delay: str = "1000",
           ports: str = "39999\t39999") -> str:
    """A section header comment as fixtures.write_fixture writes it."""
    return (f"tcplab {version} fixture of exercise close-3-segments (drive mode, IPv4); kernel: Linux {kernel}; "
            f"sysctls in force: net.ipv4.ip_local_port_range={ports} net.ipv4.tcp_fin_timeout=60 "
            f"net.ipv4.tcp_tw_reuse_delay={reuse_delay}; "
            "times are the script's timeline; only segments matched by script lines are kept")


def close(last_flags: str = "F.", last_seq: int = 1, last_ack: int = 2, last_line: int = 25) -> list:
    """A handshake and a three-segment close, each segment's comment naming its script line."""
    segments = capture((0, from_lab("S", 0)), (0, from_kernel("S.", 0, 1)), (0, from_lab(".", 1, 1)),
                       (0, from_lab("F.", 1, 1)), (0, from_kernel(last_flags, last_seq, last_ack)),
                       (0, from_lab(".", 2, 2)))
    lines = (10, 11, 12, 22, last_line, 26)
    return [dataclasses.replace(item, comment=f"close.pkt:{line} +0 ...") for item, line in zip(segments, lines)]


def test_the_same_fixture_is_the_same():
    assert compare(Fixture(header(), close()), Fixture(header(), close()), "x").verdict == SAME


def test_another_kernel_build_with_the_same_segments_is_only_the_environment():
    comparison = compare(Fixture(header(), close()), Fixture(header(kernel="6.18.44-fc-v1272"), close()), "x")
    assert (comparison.verdict, comparison.differences) == (ENVIRONMENT_ONLY, ())
    assert not comparison.changed
    assert comparison.environment == "kernel 6.18.44-fc-v1272, was 6.18.44-fc-v657"


def test_another_tcplab_version_is_only_the_environment_too():
    comparison = compare(Fixture(header(), close()), Fixture(header(version="0.2.0"), close()), "x")
    assert comparison.verdict == ENVIRONMENT_ONLY and comparison.environment == "tcplab 0.2.0, was 0.1.0"


@pytest.mark.parametrize(("changed", "removed", "added"), [
    ({"last_flags": "R."}, "-server > F. 1:1(0) ack 2 ", "+server > R. 1:1(0) ack 2 "),
    ({"last_seq": 2}, "-server > F. 1:1(0) ack 2 ", "+server > F. 2:2(0) ack 2 "),
    ({"last_ack": 1}, "-server > F. 1:1(0) ack 2 ", "+server > F. 1:1(0) ack 1 "),
    ({"last_line": 24}, "-server > F. 1:1(0) ack 2 win 1000  // close.pkt:25 ", "+server > F. 1:1(0) ack 2 win 1000  // close.pkt:24 "),
], ids=["flags", "seq", "ack", "script-line"])
def test_a_changed_segment_is_a_change_and_named(changed, removed, added):
    comparison = compare(Fixture(header(), close()), Fixture(header(kernel="6.18.44-fc-v1272"), close(**changed)),
                         "captures/close.pcapng")
    assert comparison.verdict == CHANGED and comparison.changed
    assert any(line.startswith(removed) for line in comparison.differences), comparison.differences
    assert any(line.startswith(added) for line in comparison.differences), comparison.differences
    assert comparison.differences[0] == "--- captures/close.pcapng (committed)"


def test_a_changed_sysctl_is_a_change():
    comparison = compare(Fixture(header(), close()), Fixture(header(reuse_delay="500"), close()), "x")
    assert comparison.verdict == CHANGED
    assert "-sysctls in force: net.ipv4.tcp_tw_reuse_delay=1000" in comparison.differences
    assert "+sysctls in force: net.ipv4.tcp_tw_reuse_delay=500" in comparison.differences


def test_a_sysctl_of_two_numbers_is_one_fact():
    comparison = compare(Fixture(header(), close()), Fixture(header(ports="40000\t40000"), close()), "x")
    assert comparison.verdict == CHANGED
    changed = [line for line in comparison.differences if line[0] in "-+" and "sysctls" in line]
    assert changed == ["-sysctls in force: net.ipv4.ip_local_port_range=39999 39999",
                       "+sysctls in force: net.ipv4.ip_local_port_range=40000 40000"], changed


def test_no_committed_fixture_is_missing_and_an_unreadable_one_changed(tmp_path):
    assert compare_files(tmp_path / "none.pcapng", tmp_path / "fresh.pcapng").verdict == MISSING
    (tmp_path / "junk.pcapng").write_bytes(b"junk")
    comparison = compare_files(tmp_path / "junk.pcapng", tmp_path / "fresh.pcapng")
    assert comparison.verdict == CHANGED and "cannot be read" in comparison.differences[0]


def test_a_run_made_again_says_why():
    passed = RunResult("close.pkt", 4, None, None, 0.1, exercise="close")
    assert _made_again(passed) == ""
    late = dataclasses.replace(passed, first_try=Failure(22, "the lab began this line 6.0 ms late", LAB_LATE))
    assert _made_again(late) == (" (made again uncrowded: on its first try the lab was late at line 22 "
                                 "(the lab began this line 6.0 ms late))")
