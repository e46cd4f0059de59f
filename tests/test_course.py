"""The course's new exercises against the kernel: each catches a wrong expectation, and a failing line fails its claims.

test_catalogue runs every exercise in both families and expects a pass; here
each exercise added for a claim meets the expectation an article (or a
careless reader) would write, and the run must fail on the line that says
otherwise. Experiments get the kernel setting or constant they rely on
changed instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import judged, judged_wrong, tcplab

from lab.course.catalogue import find
from lab.course.claims import claims, evaluate
from lab.script.settings import Settings
from lab.course.experiments import Experiment, fast_open, isn_random, syncookies_overflow, tw_recycle
from lab.script.parser import parse

# (exercise, the line as shipped, the wrong expectation, words of the failure)
WRONG = [
    ("time-wait-fin-timeout", " +1.5 state TIME_WAIT timer time_wait 58.2~58.5", " +1.5 state CLOSED",
     "expected CLOSED"),
    ("time-wait-buckets", "   +0 state CLOSED                                      // #no-time-wait",
     "   +0 state TIME_WAIT", "expected TIME_WAIT"),
    ("time-wait-buckets", "   +0 > R 2:2(0) ", "   +0 > . 2:2(0) ack 2 ", "flags: expected ., got R"),
    ("keepalive-off", "TCP_KEEPCNT, [9], [4]", "TCP_KEEPCNT, [10], [4]", "optval is [9]"),
    ("keepalive-off", "   +2 state ESTABLISHED timer none", "   +2 state ESTABLISHED timer keepalive 0~7200",
     "timer: expected keepalive, the kernel reports none"),
    ("keepalive-reset", "   +1 > . 0:0(0) ack 1", "  +.4 > . 0:0(0) ack 1",
     "the kernel sent nothing; expected this segment by"),
    ("orphan-retries-2", " +1.4 state FIN_WAIT1", " +1.4 state CLOSED", "expected CLOSED"),
    ("orphan-retries-2", "  +.8~+.88 > F. 1:1(0) ack 1", "  +1.6~+1.7 > F. 1:1(0) ack 1",
     "timing: the segment arrived at"),
    # No RST expected at once: the one the kernel sent at once meets the next RST line, half a second early.
    ("restarted-server-rst", "   +0 > R 1:1(0)                                        // #rst-at-once",
     "  +.5 state LISTEN port 8080", "timing: the segment arrived at 0.000 s, expected at 0.5"),
    ("orphan-meets-rst", "   +0 state CLOSED", "   +0 state FIN_WAIT1", "expected FIN_WAIT1"),
    ("data-ack", "   +0 > . 1:1(0) ack 101 ", "   +0 > . 1:1(0) ack 2 ", "ack: expected 2, got 101"),
    ("delayed-ack", "+.04~+.048 > . 1:1(0) ack 21", "   +0 > . 1:1(0) ack 21",
     "the kernel sent nothing; expected this segment by"),
    ("delayed-ack", "   +0 > P. 1:6(5) ack 31", "   +0 > . 1:1(0) ack 31", "flags: expected ., got P."),
    ("last-ack-retransmit", "   +0 state LAST_ACK                                    // #still-last-ack",
     "   +0 state CLOSED", "expected CLOSED"),
    ("last-ack-retransmit", "  +.2~+.22 > F. 1:1(0) ack 2", "  +1~+1.1 > F. 1:1(0) ack 2",
     "timing: the segment arrived at"),
    ("write-after-rst", "= -1 ECONNRESET (Connection reset by peer)", "= -1 EPIPE (Broken pipe)",
     "errno: expected -1 EPIPE, got -1 ECONNRESET"),
]


@pytest.mark.parametrize(("name", "old", "new", "words"), WRONG, ids=[f"{w[0]}:{i}" for i, w in enumerate(WRONG)])
def test_a_wrong_expectation_in_a_new_exercise_fails(name, old, new, words):
    exercise = find(name)
    text = exercise.script.read_text()
    assert text.count(old) == 1, old
    result = judged_wrong(parse(text.replace(old, new), str(exercise.script)), 4, Settings())
    assert not result.passed
    assert words in " | ".join([result.failure.message, *result.failure.fields]), result.failure


def test_restarted_server_really_answers_with_rst():
    """The mutation above replaced the RST line by a wait: the RST must then show up as an unread segment."""
    exercise = find("restarted-server-rst")
    text = exercise.script.read_text().replace("   +0 > R 1:1(0)                                        // #rst-at-once",
                                               "   +0 > . 1:1(0) ack 101")
    result = judged(parse(text, str(exercise.script)), 6, Settings())
    assert not result.passed
    assert "flags: expected ., got R" in " | ".join([result.failure.message, *result.failure.fields]), result.failure


@pytest.mark.parametrize(("name", "old", "new", "words"), [
    ("write-after-peer-close", "   +0 server state FIN_WAIT2", "   +0 server state CLOSED",
     "state: expected CLOSED, the kernel reports FIN_WAIT2"),
    ("rst-linger-zero", "   +0 server > R. 1:1(0) ack 1 <...>", "   +0 server > F. 1:1(0) ack 1 <...>",
     "flags: expected F., got R."),
])
def test_a_wrong_expectation_in_an_observe_exercise_fails(name, old, new, words):
    exercise = find(name)
    text = exercise.script.read_text()
    assert text.count(old) == 1, old
    result = judged_wrong(parse(text.replace(old, new), str(exercise.script)), 4, Settings())
    assert not result.passed and words in " | ".join([result.failure.message, *result.failure.fields])


def test_syncookies_overflow_fails_when_the_queue_does_not_overflow(monkeypatch):
    monkeypatch.setattr(syncookies_overflow, "BACKLOG", 64)
    result = Experiment("syncookies-overflow", 0.8).run(4, Settings())
    assert not result.passed and "#overflow-cookies" in result.failure.message


def test_fast_open_fails_when_the_server_does_not_offer_it(monkeypatch):
    monkeypatch.setattr(fast_open, "SERVER_FASTOPEN", 1)  # client bit only: no cookie from the server
    result = Experiment("fast-open", 0.5).run(6, Settings())
    assert not result.passed and "#cookie" in result.failure.message


@pytest.mark.parametrize(("module", "name", "value", "label", "experiment"), [
    (isn_random, "TICK_NS", 32, "#clock", ("isn-random", 0.6)),  # ISNs would step every 32 ns, not 64
    (tw_recycle, "MSL", "fin", "#no-msl", ("tw-recycle", 0.1)),  # a "fin" sysctl exists: the check must see it
    (syncookies_overflow, "DEFAULT", "0", "#default-1", ("syncookies-overflow", 0.8)),
], ids=(CHANGED_CONSTANTS := ["isn-random#clock", "tw-recycle#no-msl", "syncookies-overflow#default-1"]))
def test_an_experiments_check_fails_when_what_it_asserts_is_changed(monkeypatch, module, name, value, label,
                                                                    experiment):
    """The experiments' evidence labels can fail too: the value a labelled check asserts, changed, fails it."""
    monkeypatch.setattr(module, name, value)
    result = Experiment(*experiment).run(4, Settings())
    assert not result.passed and f"check {label}:" in result.failure.message, result.failure


# (experiment, the check's condition as shipped, the condition with the value it asserts changed, the label)
CHANGED_CHECKS = [
    ("isn-random", "if buckets < MIN_BUCKETS:", "if buckets < 17:", "spread"),  # 17 of 16 buckets: impossible
    ("syncookies-overflow", "if len(answered) != FLOOD:", "if len(answered) != FLOOD + 1:", "all-answered"),
    ("syncookies-overflow", 'if state != "ESTABLISHED":', 'if state != "SYN_RECV":', "cookie-ack"),
    ("syncookies-overflow", "if len(answered) > BACKLOG + 1:", "if len(answered) > 0:", "no-cookies-drop"),
    ("fast-open", '_fast_open_option(syn) != b""', '_fast_open_option(syn) != b"\\0"', "cookie-request"),
    ("fast-open", "syn.payload != REQUEST ", "syn.payload != REQUEST[1:] ", "syn-data"),
    ("fast-open", "(syn.seq + 1 + len(REQUEST))", "(syn.seq + len(REQUEST))", "data-acked"),
]


@pytest.mark.parametrize(("name", "old", "new", "label"), CHANGED_CHECKS,
                         ids=[f"{name}#{label}" for name, _, _, label in CHANGED_CHECKS])
def test_an_experiments_check_fails_when_its_condition_asserts_another_value(monkeypatch, name, old, new, label):
    """The experiment runs from its own source with one condition changed, as the script mutations change a line:
    the run must fail at the check that label names."""
    import sys
    import types

    from lab.course.labels import line_of

    experiment = find(name).runnable()
    source = Path(experiment.path).read_text()
    assert source.count(old) == 1, old
    mutated = types.ModuleType(f"lab.course.experiments.{experiment.module_name}")
    mutated.__file__ = experiment.path  # failed_check finds the label's line in the file, which the change keeps
    exec(compile(source.replace(old, new), experiment.path, "exec"), mutated.__dict__)
    monkeypatch.setitem(sys.modules, mutated.__name__, mutated)
    result = experiment.run(4, Settings())
    assert not result.passed and f"check #{label}:" in result.failure.message, result.failure
    assert result.failure.line == line_of(experiment.path, label)


def test_every_label_of_an_experiment_has_a_test_that_fails_it():
    """A claim's evidence must be able to fail: each experiment check a label names is broken by one test above."""
    from lab.course.catalogue import exercises
    from lab.course.labels import labels

    tested = {*CHANGED_CONSTANTS, *(f"{name}#{label}" for name, _, _, label in CHANGED_CHECKS),
              "syncookies-overflow#overflow-cookies", "fast-open#cookie", "tw-recycle#gone"}
    shipped = {f"{exercise.name}#{label}" for exercise in exercises() if exercise.experiment
               for label in labels(exercise.runnable().path)}
    assert shipped - tested == set()


def test_a_failing_run_fails_exactly_the_claims_resting_on_its_lines():
    """A real run of close-active where the kernel's ACK of the FIN is expected one too high."""
    exercise = find("close-active")
    text = exercise.script.read_text().replace("> . 1:1(0) ack 102", "> . 1:1(0) ack 103")
    broken = (judged(parse(text, str(exercise.script)), 4, Settings()))
    assert not broken.passed
    outcomes = [broken, (judged(exercise.runnable(), 6, Settings()))]
    results = {r.claim.id: r for r in evaluate(outcomes) if "close-active" in r.claim.exercises}
    failing_line = broken.failure.line
    fin_consumes = results["000-fin-consumes"]
    assert fin_consumes.claim.evidence[0].line == failing_line  # the line whose ack was changed
    assert fin_consumes.lines[0] == {4: False, 6: True}  # failed in IPv4, passed in IPv6
    assert fin_consumes.family_passed(4) is False and not fin_consumes.passed
    for result in results.values():
        lines = [item.line for item in result.claim.evidence if item.exercise == "close-active"]
        mine = [passed for item, passed in zip(result.claim.evidence, result.lines) if item.exercise == "close-active"]
        assert mine == [{4: line < failing_line, 6: True} for line in lines], result.claim.id


def test_run_ends_with_the_summary_table():
    result = tcplab("run", "data-ack", "tw-recycle", "--lang", "zh", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("\n\n")[-2]
    assert table.splitlines()[0].split() == ["练习", "文章说法", "结论", "IPv4", "IPv6"]
    row = next(line for line in table.splitlines() if line.startswith("data-ack"))
    assert "ack = seq + 1" in row and "细化" in row and row.split()[-2:] == ["通过", "通过"]
    assert "site-packages" not in result.stdout and "PASS data-ack (IPv4)" in result.stdout
    assert "4 个通过，0 个失败" in result.stdout
    assert len(claims()) >= 40


@pytest.mark.xdist_group("batches")  # the catalogue's runs, made once
def test_claims_command_writes_the_three_documents_and_passes(tmp_path, catalogue_runs):
    result = tcplab("claims", "--docs", str(tmp_path), "--lang", "en", "--from", str(catalogue_runs.recorded))
    import json

    entries = json.loads((tmp_path / "claims.json").read_text(encoding="utf-8"))
    assert [entry["id"] for entry in entries] == [claim.id for claim in claims()]
    failing = [e["id"] for e in entries if "fail" in e["results"].values()]
    assert failing == [] and result.returncode == 0, result.stdout + result.stderr
    english = (tmp_path / "claims.md").read_text(encoding="utf-8")
    chinese = (tmp_path / "claims.zh.md").read_text(encoding="utf-8")
    assert "## 001-tw-2msl-2min" in english and "**Verdict: refuted.**" in english
    assert "## 001-tw-2msl-2min" in chinese and "**结论：证伪。**" in chinese
    assert f"{len(entries)} claims, {len(failing)} with a line that did not pass" in result.stdout
