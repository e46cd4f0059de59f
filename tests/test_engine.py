"""The trace engine against the real kernel: our scripts pass, wrong expectations fail.

Every check the engine makes has a test here that changes one expectation of
a passing script and asserts the run fails at that line, naming the field.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import time

import pytest
from helpers import SCRIPTS, judged, judged_wrong

from lab.live import kernelapp
from lab.live import punctual

from lab.capture.check import check_capture
from lab.capture.pcapfile import read_segments, read_timeline
from lab.live.runner import run_script
from lab.script.settings import Settings
from lab.script.parser import parse, parse_file


ALL_SCRIPTS = sorted(SCRIPTS.glob("*.pkt"))


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=lambda p: p.stem)
def test_our_scripts_pass_live_and_offline_alike(path, family, tmp_path):
    """Each engine script passes live; its capture, checked offline against the same script (the clock
    anchored by the timeline the capture carries), passes too with the same lines matched: one matcher."""
    script, pcap = parse_file(str(path)), str(tmp_path / "run.pcapng")
    result = judged(script, family, Settings(pcap=pcap))
    assert result.passed, result.failure and f"line {result.failure.line}: {result.failure.message}"
    checked = check_capture(script, read_segments(pcap), pcap, Settings(), read_timeline(pcap))
    assert checked.passed, checked.failure
    matched = [(s.line, s.sender, s.flags, s.seq, s.ack) for s in result.steps if s.line]
    assert matched, "the live run matched no segment line"
    assert [(s.line, s.sender, s.flags, s.seq, s.ack) for s in checked.steps if s.line] == matched


def run_mutated(name: str, old: str, new: str, family: int = 4):
    """Run scripts/NAME with one line changed; return (the failure, the changed (last) line's number)."""
    path = SCRIPTS / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {name}"
    mutated = text.replace(old, new)
    line = mutated[: mutated.index(new) + len(new)].count("\n") + 1
    result = judged_wrong(parse(mutated, str(path)), family, Settings())
    assert not result.passed, "the changed expectation should have failed"
    return result.failure, line


MUTATIONS = [
    # (script, original text, wrong expectation, what the report must say)
    ("passive_open.pkt", "> S. 0:0(0) ack 1 <mss 1460", "> S 0:0(0) ack 1 <mss 1460", "flags: expected S, got S."),
    ("passive_open.pkt", "+0 > . 1:1(0) ack 1001", "+0 > . 2:2(0) ack 1001", "seq: expected 2, got 1"),
    ("passive_open.pkt", "+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1000", "ack: expected 1000, got 1001"),
    ("passive_open.pkt", "+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1001 win 7", "win: expected 7, got"),
    ("active_open.pkt", "> P. 1:1001(1000) ack 1", "> P. 1:1201(1200) ack 1", "length: expected 1200, got 1000"),
    ("passive_open.pkt", "<mss 1460,nop,nop,sackOK,nop,wscale 8>", "<mss 1400,nop,nop,sackOK,nop,wscale 8>",
     "options: expected <mss 1400"),
    ("passive_open.pkt", "<mss 1460,nop,nop,sackOK,nop,wscale 8>", "<mss 1460,nop,nop,sackOK,nop,wscale 9>",
     "got <mss 1460,nop,nop,sackOK,nop,wscale 8>"),
    ("passive_open.pkt", "<mss 1460,nop,nop,sackOK,nop,wscale 8>", "<mss 1460,nop,nop,nop,nop,wscale 8>",
     "options: expected <mss 1460,nop,nop,nop,nop,wscale 8>"),
    ("timestamps.pkt", "<mss 1460,sackOK,TS val 5000 ecr 100,nop,wscale 10>", "<mss 1460,sackOK,nop,nop,nop,wscale 10>",
     "got <mss 1460,sackOK,TS val"),
    ("sack.pkt", "<nop,nop,sack 1001:2001>", "<nop,nop,sack 1001:1501>", "got <nop,nop,sack 1001:2001>"),
    ("passive_open.pkt", "+.04~+.05 > . 1:1(0) ack 1002", "+.2 > . 1:1(0) ack 1002", "timing: the segment arrived at"),
    ("passive_open.pkt", "recv(4, ..., 1000, 0) = 1000", "recv(4, ..., 1000, 0) = 999",
     "recv() returned 1000, expected 999"),
    ("reset_by_peer.pkt", "= -1 ECONNRESET", "= -1 ETIMEDOUT", "errno: expected -1 ETIMEDOUT, got -1 ECONNRESET"),
    ("passive_open.pkt", "+0 state CLOSE_WAIT", "+0 state LAST_ACK",
     "state: expected LAST_ACK, the kernel reports CLOSE_WAIT"),
    ("active_open.pkt", "timer time_wait 59~60", "timer time_wait 10~20", "s left, expected 10~20 s"),
    ("socket_options.pkt", "timer keepalive 29~30", "timer retransmit", "timer: expected retransmit"),
    ("timestamps.pkt", "%{ assert tcpi_options & TCPI_OPT_TIMESTAMPS }%", "%{ assert tcpi_snd_mss == 1 }%",
     "assert tcpi_snd_mss == 1 failed (tcpi_snd_mss="),
    ("reset_by_peer.pkt", "+0 write(4, ..., 100) = -1 EPIPE (Broken pipe)",
     "+0 write(4, ..., 100) = -1 EPIPE (Broken pipe)\n   +0 > F. 1:1(0) ack 1", "the kernel sent nothing"),
    ("blocking_read.pkt", "+0...0.050 read(4, ..., 2000) = 2000", "+0 read(4, ..., 2000) = 2000",
     "read() blocked; the script expects it to return at once"),
    ("blocking_read.pkt", "+0...0.050 read(4, ..., 2000) = 2000", "+0...0.020 read(4, ..., 2000) = 2000",
     "read() was still blocked after its end time"),
    ("blocking_read.pkt", "+0...0.050 read(4, ..., 2000) = 2000", "+0...0.080 read(4, ..., 2000) = 2000",
     "timing: read() returned at"),
    ("socket_options.pkt", "getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [30], [4])",
     "getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [31], [4])", "optval is [30], expected [31]"),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), MUTATIONS,
                         ids=[f"{m[0]}:{m[3].split(':')[0]}" for m in MUTATIONS])
def test_a_wrong_expectation_fails_at_its_line(name, old, new, message):
    failure, line = run_mutated(name, old, new)
    report = " | ".join([failure.message, *failure.fields])
    assert message in report
    assert failure.line == line


def test_mismatch_report_shows_actual_in_script_syntax_and_history():
    failure, _ = run_mutated("passive_open.pkt", "+0 > . 1:1(0) ack 1001", "+0 > . 1:1(0) ack 1000")
    assert failure.expected == "+0 > . 1:1(0) ack 1000"
    assert failure.actual.startswith("> . 1:1(0) ack 1001 win ")
    assert any(step.text() == "< P. 1:1001(1000) ack 1 win 257" for step in failure.recent)
    assert failure.kind == "content"


def test_coalesced_segment_matches_two_lines():
    """Nagle makes the kernel send the two small writes as one 200-byte segment."""
    result = judged(parse_file(str(SCRIPTS / "coalesce.pkt")), 4, Settings())
    assert result.passed, result.failure
    kernel = [step for step in result.steps if not step.from_left]
    assert kernel[-1].text().startswith("> P. 101:301(200) ack 1")
    # The SYN-ACK (line 8), the first write's segment (13), and one segment for lines 17 and 18, noted at the
    # first of them: no segment of its own came for line 18, and the run passed.
    assert [step.line for step in kernel] == [8, 13, 17]


@contextlib.contextmanager
def cpu_hog(cpu: int):
    """A child process on ``cpu`` at a real-time priority above the lab's; ``hold(start, end)`` makes it
    keep that CPU between two monotonic moments. A process, not a thread: it must not share the lab's GIL."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the hog: nothing here may raise into pytest
        try:
            os.sched_setaffinity(0, {cpu})
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(punctual.SYSCALL_PRIORITY + 20))
            start, end = struct.unpack("dd", os.read(read_end, 16))
            time.sleep(max(start - time.monotonic(), 0))
            while time.monotonic() < end:
                pass
        finally:
            os._exit(0)
    os.close(read_end)

    def hold(start: float, end: float) -> None:
        os.write(write_end, struct.pack("dd", start, end))

    try:
        yield hold
    finally:
        os.close(write_end)
        os.waitpid(child, 0)


@pytest.mark.alone  # pins CPUs; other tests' runs would make the lab late elsewhere
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or not punctual.realtime_allowed(),
                    reason="needs two CPUs and real-time scheduling")
def test_a_return_noted_late_for_want_of_a_cpu_is_the_labs_lateness(monkeypatch):
    """connect() returns when the lab's SYN-ACK arrives at 0.010 s. Here its thread is kept on a CPU that
    something of higher priority holds from 0.004 to 0.024 s, so the return is noted ~14 ms late: its
    thread's wait for a CPU (the kernel's schedstat) makes that the lab's lateness, never the kernel's."""
    cpus = os.sched_getaffinity(0)
    other = sorted(cpus - {punctual.timeline_cpu(cpus)})[0]  # not the timeline's CPU

    def on_the_other_cpu():
        os.sched_setaffinity(0, {other})
        punctual.above_timelines()

    run_call = kernelapp.KernelApp._run
    with cpu_hog(other) as hold:
        def run_with_a_hog(app, event, call, waits=None):
            if event.name == "connect":
                now = time.monotonic()
                hold(now + 0.004, now + 0.024)
            run_call(app, event, call, waits)

        monkeypatch.setattr(kernelapp, "above_timelines", on_the_other_cpu)
        monkeypatch.setattr(kernelapp.KernelApp, "_run", run_with_a_hog)
        result = run_script(parse_file(str(SCRIPTS / "active_open.pkt")), 4, Settings())  # lab-late is the point
    assert not result.passed and result.failure.line == 5, result.failure
    assert result.failure.kind == "lab-late", result.failure.message
    assert "waiting for a CPU" in result.failure.message


@contextlib.contextmanager
def spinning(cpu: int):
    """A child process keeping ``cpu`` busy (normal scheduling) until the block ends."""
    child = os.fork()
    if child == 0:
        try:
            os.sched_setaffinity(0, {cpu})
            while True:
                pass
        finally:
            os._exit(0)
    try:
        time.sleep(0.05)  # on its CPU, out of idle
        yield
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


@pytest.mark.alone  # reads every CPU's tick state
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_busy_cpu_shows_its_tick_running_and_no_idle_calls():
    cpus = sorted(os.sched_getaffinity(0))
    with spinning(cpus[1]):
        before = punctual.ticking_cpus()
        time.sleep(0.05)
        after = punctual.ticking_cpus()
    assert before is not None and set(cpus) <= set(before), before
    assert after[cpus[1]][0], "the busy CPU's tick must run"
    assert after[cpus[1]][1] == before[cpus[1]][1], "the busy CPU made idle calls"


@pytest.mark.alone  # reads every CPU's tick state
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_wait_for_quiet_cpus_does_not_wait_for_a_busy_one(monkeypatch):
    """A CPU another process keeps busy never stops its tick: the wait gives up on it after BUSY_AFTER,
    not at the (here stretched) limit."""
    cpus = sorted(os.sched_getaffinity(0))
    monkeypatch.setattr(punctual, "SETTLE_LIMIT", 10.0)
    affinity = os.sched_getaffinity(0)
    with spinning(cpus[1]):
        os.sched_setaffinity(0, {cpus[0]})
        try:
            began = time.monotonic()
            punctual.let_other_cpus_settle()
            waited = time.monotonic() - began
        finally:
            os.sched_setaffinity(0, affinity)
    assert waited < 5.0, f"waited {waited:.1f} s for a CPU that another process keeps busy"


@pytest.mark.alone  # a run judged without being made again
@pytest.mark.parametrize("crowded", [True, False], ids=["crowded", "uncrowded"])
def test_a_first_action_begun_late_starts_the_crowded_clock(monkeypatch, crowded):
    """Time 0 set 20 ms before the timeline really starts, as when a crowded batch's other workers take the
    CPU right after it: a crowded run moves time 0 to its first action (nothing of the kernel's counted from
    it yet) and passes; an uncrowded one keeps its tick-aligned time 0 and is lab-late at its first line."""
    from lab.live import runner
    from lab.judge.trace import LAB_LATE

    monkeypatch.setattr(runner, "timeline_start", lambda on_tick: time.monotonic() - 0.020)
    script = parse_file(str(SCRIPTS / "passive_open.pkt"))
    result = run_script(script, 4, Settings(crowded=crowded))
    if crowded:
        assert result.passed, result.failure and f"line {result.failure.line}: {result.failure.message}"
    else:
        assert result.failure is not None and result.failure.kind == LAB_LATE
        first_timed = next(event for event in script.events if not getattr(event, "init", False))
        assert result.failure.line == first_timed.line


def test_a_crowded_action_begun_late_after_a_segment_is_lab_late(monkeypatch):
    """Once a segment has crossed the link the kernel's timers count from the script's moments: the lab's
    20 ms delay before the first syscall after the handshake stays the lab's lateness, crowded or not."""
    from lab.live import runner
    from lab.judge.trace import LAB_LATE

    script = parse_file(str(SCRIPTS / "passive_open.pkt"))
    accept = next(event for event in script.events if getattr(event, "name", "") == "accept")
    real_wait = runner.wait_until
    handled = []

    def late_before_accept(moment: float, realtime: bool) -> None:
        real_wait(moment, realtime)
        if handled == [] and any(step.line == accept.line - 1 for step in run.matcher.steps):
            handled.append(True)
            time.sleep(0.020)

    original_init = runner.Run.__init__

    def keep_run(self, *args, **kwargs):
        nonlocal run
        original_init(self, *args, **kwargs)
        run = self

    run = None
    monkeypatch.setattr(runner, "wait_until", late_before_accept)
    monkeypatch.setattr(runner.Run, "__init__", keep_run)
    result = run_script(script, 4, Settings(crowded=True))
    assert handled and result.failure is not None and result.failure.kind == LAB_LATE
    assert result.failure.line == accept.line, result.failure


@pytest.mark.alone  # sightings of the tick need a CPU at once (the kernel layer: as root, on a quiet pass)
def test_the_tick_grid_predicts_a_later_tick():
    """A fresh sighting of the coarse clock advancing falls on the grid seen earlier (within 0.3 ms)."""
    grid = punctual.tick_grid()
    if grid is None:
        pytest.skip("no tick grid sighted here (tick_grid returned None)")
    length, tick = grid
    offsets = []
    for _ in range(3):  # a sighting may be late when another process has the CPU: one of three suffices
        time.sleep(0.05)
        last = time.clock_gettime(punctual.CLOCK_MONOTONIC_COARSE)
        while time.clock_gettime(punctual.CLOCK_MONOTONIC_COARSE) == last:
            pass
        offset = (time.monotonic() - tick) % length
        offsets.append(min(offset, length - offset))
    assert min(offsets) < 0.0003, offsets


def test_a_process_kept_to_its_timeline_cpu_still_counts_every_cpu():
    """``tcplab run`` of one script keeps to its timeline's CPU from the start (lab/live/punctual.py); a batch
    it then starts still sees every CPU (how many workers, whether crowded), and gets them back for a pool."""
    before = os.sched_getaffinity(0)
    if len(before) < 2 or not punctual.realtime_allowed():
        pytest.skip("one CPU, or no real-time scheduling: nothing to keep to")
    try:
        punctual.keep_to_timeline_cpu()
        assert os.sched_getaffinity(0) == {punctual.timeline_cpu(before)}
        assert punctual.usable_cpus() == before
    finally:
        punctual.spread_again()
    assert os.sched_getaffinity(0) == before and punctual.usable_cpus() == before
