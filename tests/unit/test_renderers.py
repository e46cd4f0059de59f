"""Renderers read finished traces: the ladder, the mismatch report, JSON, the --repeat table."""

from __future__ import annotations

import json

import pytest

from lab.views import ladder
from lab.views.report import render_failure
from lab.errors import BadInput
from lab.judge.trace import Action, Difference, Failure, KernelEvent, LAB_LATE, PendingTimer, RunResult, StateChange, Step
from lab.views.repeat import table
from lab.views.results import as_dict, read_json, to_json


def step(time, sender, flags, seq, ack, line=None, **extra) -> Step:
    return Step(time, sender, sender == "lab", "<" if sender == "lab" else ">", flags, seq, seq, 0, ack, 502, (),
                1000 + seq, None if ack is None else 5000 + ack, line=line, **extra)


STEPS = [step(0.0, "lab", "S", 0, None, 4, states={"kernel": "SYN_RECV"}),
         step(0.0001, "kernel", "S.", 0, 1, 5, states={"kernel": "SYN_RECV"}),
         step(0.0102, "lab", ".", 1, 1, 6, states={"kernel": "ESTABLISHED"}, mismatch="ack: expected 2, got 1")]


def test_ladder_draws_direction_states_and_the_mismatch():
    rows = ladder.text_ladder(STEPS, "lab", "kernel").splitlines()
    assert "->" in rows[1] and rows[1].rstrip().endswith("SYN_RECV")
    assert "<-" in rows[2] and "S. 0:0(0) ack 1" in rows[2]
    assert "MISMATCH: ack: expected 2, got 1" in rows[3]
    crossed = [line.strip() for line in ladder.mermaid(STEPS, "lab", "kernel").splitlines() if "-x" in line]
    assert crossed == ["L-xR: . 1:1(0) ack 1 (MISMATCH: ack: expected 2, got 1)"]


def test_report_names_the_kind_and_the_segments_before():
    failure = Failure(6, "the lab sent this segment at 0.0152 s, 5.2 ms after its script time 0.010 s", LAB_LATE,
                      expected="+.01 < . 1:1(0) ack 1 win 502", recent=STEPS[:2])
    report = render_failure(RunResult("t.pkt", 4, failure, None, 0.1))
    assert report.startswith("t.pkt:6: IPv4: the lab sent this segment")
    assert "kind:     lab-late (the LAB was late, not the kernel" in report
    assert "0.0001  > S. 0:0(0) ack 1 win 502" in report


def test_json_carries_steps_actions_and_the_failure_kind():
    failure = Failure(6, "late", LAB_LATE)
    result = RunResult("t.pkt", 6, failure, None, 0.1, STEPS, actions=[Action(4, "inject", "lab", 0.0, 0.05)])
    entry = json.loads(to_json([result]))[0]
    assert entry["failure"]["kind"] == "lab-late"
    assert [s["flags"] for s in entry["steps"]] == ["S", "S.", "."]
    assert entry["steps"][1]["live_ack"] == 5001
    assert entry["lab_actions"] == [{"line": 4, "what": "inject", "endpoint": "lab", "script_time": 0.0,
                                     "late_ms": 0.05, "result": "", "time": None}]


def test_json_reads_back_into_the_same_run(tmp_path):
    """`tcplab claims --from` reads what `run --json` wrote: every field but the report comes back."""
    result = RunResult("t.pkt", 6, Failure(6, "ack", "content", "> . 1:1(0) ack 2", "> . 1:1(0) ack 1", ["ack"],
                                           differences=(Difference("ack", "2", "1"),)),
                       "t.pcapng", 0.1, STEPS, ["a note"], exercise="t", actions=[Action(4, "inject", "lab", 0.0, 0.05)],
                       state_changes=[StateChange(0.001, "kernel", "LISTEN", "SYN_RECV", "capture", 8080)],
                       kernel_events=[KernelEvent(0.002, "kernel", "RST sent")], state_source="tracepoint",
                       sysctls=[("net.ipv4.tcp_fin_timeout", "5")], timers=[PendingTimer(0.003, "kernel", "keepalive", 999)],
                       first_try=Failure(2, "late", LAB_LATE))
    path = tmp_path / "run.json"
    path.write_text(to_json([result]))
    (back,) = read_json(str(path))
    assert as_dict(back) == as_dict(result)
    assert back.steps == result.steps and back.failure.fields == ["ack"] and back.case == "t"


def test_a_file_that_is_not_runs_json_is_one_clear_line(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('[{"name": "x"}]')
    with pytest.raises(BadInput, match=r"other.json: not the JSON of `tcplab run --json`"):
        read_json(str(path))


def test_repeat_table_shows_each_lines_spread_and_failures_by_kind():
    runs = []
    for late in (0.1, 0.3, 2.0):
        steps = [step(0.0, "kernel", "S.", 0, 1, 5, late_ms=late)]
        runs.append(RunResult("t.pkt", 4, None, None, 0.1, steps, actions=[Action(3, "syscall listen",
                                                                                         "kernel", 0.0, late / 2)]))
    runs.append(RunResult("t.pkt", 4, Failure(5, "x", "timing"), None, 0.1))
    text = table(runs, {5: "+0 > S. 0:0(0) ack 1", 3: "+0 listen(3, 1) = 0"})
    assert "4 runs, 3 passed, 1 timing" in text
    assert "    5   3     +0.300     +2.000  +0 > S. 0:0(0) ack 1" in text
    assert "    3   3     +0.150     +1.000  +0 listen(3, 1) = 0" in text


def test_lateness_summary_names_median_and_worst():
    from lab.views.report import lateness_summary

    actions = [Action(4, "inject", "lab", 0.0, late) for late in (0.1, 0.4, 2.5)]
    assert lateness_summary(RunResult("t.pkt", 4, None, None, 0.1, actions=actions)) == \
        "lab lateness: 3 actions, median 0.400 ms, worst 2.500 ms"
    assert lateness_summary(RunResult("t.pkt", 4, None, None, 0.1)) == "lab lateness: no timed actions"


def test_a_run_made_again_says_so_in_text_summary_json_and_junit(capsys, tmp_path):
    from lab.cli.output import made_again_count, show_verdict
    from lab.views.results import run_case, write_junit

    late = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE)
    again, plain = (RunResult("t.pkt", 4, None, None, 0.1, first_try=late)), (
        RunResult("t.pkt", 6, None, None, 0.1))
    said = "made again uncrowded: on its first try the lab was late at line 3 (the lab began this line 6.0 ms late)"
    show_verdict(again, "t.pkt (IPv4)")
    assert capsys.readouterr().out.splitlines() == ["PASS t.pkt (IPv4)", f"  {said}"]
    assert made_again_count([again, plain], "en").startswith("; 1 made again uncrowded")
    assert made_again_count([plain], "en") == ""
    first_try = json.loads(to_json([again, plain]))
    assert first_try[0]["first_try"]["kind"] == LAB_LATE and first_try[1]["first_try"] is None
    write_junit(str(tmp_path / "j.xml"), "tcplab.run", [run_case("tcplab.run", run) for run in (again, plain)])
    assert (tmp_path / "j.xml").read_text().count(said) == 1


def test_a_selftest_made_again_has_a_ktap_diagnostic_line():
    from lab.views.ktap import result_lines
    from lab.live.ksft import SelftestResult

    late = Failure(3, "the lab began this line 6.0 ms late", LAB_LATE)
    result = SelftestResult("a.pkt", 4, "pass", path="d/a.pkt", first_try=late)
    said = "a.pkt ipv4: made again uncrowded: on its first try the lab was late at line 3"
    ktap = result_lines(7, result, ktap=True)
    assert ktap[0].startswith(f"# {said}") and ktap[1] == "ok 7 a.pkt ipv4" and len(ktap) == 2
    assert result_lines(7, result, ktap=False)[1].startswith(f"     {said}")
    assert result.as_dict()["first_try"] == "d/a.pkt:3: the lab began this line 6.0 ms late"
    assert result_lines(7, SelftestResult("a.pkt", 4, "pass"), ktap=True) == ["ok 7 a.pkt ipv4"]
