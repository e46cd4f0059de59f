"""The exercise catalogue: every exercise runs against the kernel and passes, as `tcplab run --all` runs it.

Observe exercises run over veth and over loopback, in IPv4 and IPv6; each
mode has tests showing that a wrong expectation fails.
"""

from __future__ import annotations

import json

import pytest

from helpers import judged_wrong, tcplab
from lab.course.catalogue import MODES, exercises
from lab.course.claims import main_claim
from lab.script.settings import Settings
from lab.script.parser import parse, parse_file

SEEDS = ("000_e96bb92640c7751d.txt", "001_f2be7db29f51b6a9.txt", "002_eb75143f5f003d83.txt",
         "003_1cd90dc9a77fac15.txt", "004_a7959eb092ffe875.txt")
OBSERVE = [e for e in exercises() if e.mode == "observe" and not e.experiment]
DRIVE = [e for e in exercises() if e.mode == "drive" or e.experiment]  # experiments run as they are


def test_metadata_is_complete_and_matches_the_script():
    names = [exercise.name for exercise in exercises()]
    assert len(names) == len(set(names))
    for exercise in exercises():
        claim = main_claim(exercise)
        assert exercise.mode in MODES and claim.source in SEEDS
        assert exercise.title and exercise.title_zh and claim.claim_en and claim.verdict
        if exercise.experiment:
            assert exercise.script.is_file()
        else:
            assert parse_file(str(exercise.script)).observe == (exercise.mode == "observe"), exercise.name


def _failure(entry: dict) -> str:
    failure = entry["failure"]
    return f"line {failure['line']}: {failure['message']} {failure['fields']}" if failure else ""


@pytest.mark.xdist_group("batches")  # one worker: the batch runs once for them all, not beside another
def test_run_all_runs_every_exercise_in_both_families_and_exits_0(catalogue_runs):
    runs, exits = catalogue_runs.runs, catalogue_runs.exits
    assert {(name, family) for name, loopback, family in runs if not loopback} == \
        {(exercise.name, family) for exercise in exercises() for family in (4, 6)}
    assert exits == [0, 0], [(key, _failure(entry)) for key, entry in runs.items() if not entry["passed"]]


@pytest.mark.xdist_group("batches")
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("loopback", [False, True], ids=["veth", "loopback"])
@pytest.mark.parametrize("exercise", OBSERVE, ids=lambda e: e.name)
def test_observe_exercise_passes(catalogue_runs, exercise, loopback, family):
    entry = catalogue_runs.runs[exercise.name, loopback, family]
    assert entry["passed"], _failure(entry)
    senders = {event.line: event.endpoint for event in parse_file(str(exercise.script)).events}
    matched = [step for step in entry["steps"] if step["line"] is not None]
    assert matched and all(step["sender"] == senders[step["line"]] for step in matched)
    assert all(step["from_left"] == (step["sender"] == "client") for step in entry["steps"])
    assert all(set(step["states"]) == {"client", "server"} for step in entry["steps"])


@pytest.mark.xdist_group("batches")
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("exercise", DRIVE, ids=lambda e: e.name)
def test_drive_exercise_passes(catalogue_runs, exercise, family):
    entry = catalogue_runs.runs[exercise.name, False, family]
    assert entry["passed"], _failure(entry)


OBSERVE_MUTATIONS = [
    # Expecting the ACK on the FIN where the server's kernel sends the ACK alone.
    ("close-4-segments", "+.04~+.048 server > . 1:1(0) ack 102 <...>", "+.04~+.048 server > F. 1:1(0) ack 102 <...>",
     "flags: expected F., got ."),
    ("close-4-segments", "+0 client state TIME_WAIT timer time_wait 59~60", "+0 client state CLOSED",
     "state: expected CLOSED, the kernel reports TIME_WAIT"),
    ("close-4-segments", "+0 client > F. 101:101(0) ack 1 <...>", "+0 server > F. 101:101(0) ack 1 <...>",
     "the client sent a segment where the script expects the server's"),
    ("half-close", "+0 client read(3, ..., 1000) = 500", "+0 client read(3, ..., 1000) = 400",
     "read() returned 500, expected 400"),
    ("rst-closed-port", "+0 server > R. 0:0(0) ack 1 <...>", "+0 server > R. 0:0(0) ack 2 <...>",
     "ack: expected 2, got 1"),
    # The crossing FINs: each acknowledges the peer's byte, not its FIN.
    ("simultaneous-close-observed", "+0~+.1 server > F. 2:2(0) ack 2 <...>", "+0~+.1 server > F. 2:2(0) ack 3 <...>",
     "ack: expected 3, got 2"),
    ("simultaneous-close-observed", "+0 server state CLOSING", "+0 server state FIN_WAIT2",
     "state: expected FIN_WAIT2, the kernel reports CLOSING"),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), OBSERVE_MUTATIONS,
                         ids=[f"{m[0]}:{m[3].split(':')[0]}" for m in OBSERVE_MUTATIONS])
@pytest.mark.parametrize("loopback", [False, True], ids=["veth", "loopback"])
def test_observe_mode_catches_a_wrong_expectation(name, old, new, message, loopback):
    exercise = next(e for e in exercises() if e.name == name)
    text = exercise.script.read_text()
    assert text.count(old) == 1
    result = judged_wrong(parse(text.replace(old, new), str(exercise.script)), 4, Settings(loopback=loopback))
    assert not result.passed
    assert message in " | ".join([result.failure.message, *result.failure.fields])


def test_list_json_has_the_documented_keys():
    result = tcplab("list", "--json")
    assert result.returncode == 0
    entries = json.loads(result.stdout)
    assert [entry["name"] for entry in entries] == [e.name for e in exercises()]
    for entry in entries:
        assert {"name", "title", "title_zh", "mode", "runtime_s", "source", "claim", "claim_id", "quote",
                "verdict"} <= set(entry)
        assert entry["verdict"] in ("confirmed", "refined", "refuted", "untestable")
        assert entry["runtime_s"] >= 0
        assert entry["mode"] in ("drive", "observe")


def test_run_by_name_and_explain():
    result = tcplab("run", "rst-closed-port", "--loopback", "--ip-version", "6")
    assert result.returncode == 0, result.stdout
    explained = tcplab("explain", "close-3-segments", "--lang", "en")
    assert explained.returncode == 0 and "claim (002_eb75143f5f003d83.txt)" in explained.stdout
    ladder = explained.stdout.split("segment by segment")[1].split("the script")[0]
    assert "F. 1:1(0) ack 102" in ladder and "TIME_WAIT" in ladder and "CLOSED" in ladder
    unknown = tcplab("explain", "no-such-exercise")
    assert unknown.returncode == 2 and "tcplab list" in unknown.stderr
