"""Results CI can read: JSON on stdout and JUnit XML, for ``run`` and ``verify``.

One entry per (script, family). JSON keeps the failure's parts (line, kind,
message, expected, actual, differing fields), the trace's steps as data and
the lab's own actions with their lateness, so a CI step or a tool can act on
them; JUnit carries the same report as the failure text, which CI systems show.
"""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from lab.errors import BadInput
from lab.judge.trace import Action, Difference, Failure, KernelEvent, PendingTimer, RunResult, StateChange, Step
from lab.views.report import made_again, render_failure


def _failure_dict(failure) -> dict | None:
    return None if failure is None else {
        "line": failure.line, "kind": failure.kind, "message": failure.message, "expected": failure.expected,
        "actual": failure.actual, "fields": list(failure.fields),
        "differences": [{"field": diff.field, "expected": diff.expected, "actual": diff.actual}
                        for diff in failure.differences],
    }


def as_dict(outcome: RunResult) -> dict:
    return {
        "name": outcome.case,
        "kernel": outcome.kernel or platform.release(),  # runs merged from several kernels keep theirs apart
        "path": outcome.path,
        "family": outcome.family,
        "passed": outcome.passed,
        "duration_s": round(outcome.duration, 4),
        "failure": _failure_dict(outcome.failure),
        "first_try": _failure_dict(outcome.first_try),  # no verdict on the kernel: made again uncrowded
        "report": render_failure(outcome),
        "notes": list(outcome.notes),
        "capture": outcome.pcap,
        "steps": [step.as_dict() for step in outcome.steps],
        "lab_actions": [action.as_dict() for action in outcome.actions],
        "state_source": outcome.state_source,
        "state_changes": [change.as_dict() for change in outcome.state_changes],
        "kernel_events": [event.as_dict() for event in outcome.kernel_events],
        "sysctls": [list(pair) for pair in outcome.sysctls],
        "timers": [timer.as_dict() for timer in outcome.timers],
    }


def to_json(outcomes: list[RunResult]) -> str:
    return json.dumps([as_dict(outcome) for outcome in outcomes], indent=2)


def _failure_of(entry: dict | None) -> Failure | None:
    return None if entry is None else Failure(
        entry["line"], entry["message"], entry["kind"], entry["expected"], entry["actual"], list(entry["fields"]),
        differences=tuple(Difference(**diff) for diff in entry["differences"]))


def from_dict(entry: dict) -> RunResult:
    """A run back from its JSON entry (``as_dict``): all but the report, which is rendered from the rest,
    and the segments a failure saw before it, which JSON does not keep."""
    steps = [Step(**{**step, "options": tuple(step["options"])}) for step in entry["steps"]]
    return RunResult(entry["path"], entry["family"], _failure_of(entry["failure"]), entry["capture"],
                     entry["duration_s"], steps, entry["notes"], exercise=entry["name"],
                     actions=[Action(**action) for action in entry["lab_actions"]],
                     state_changes=[StateChange(**change) for change in entry["state_changes"]],
                     kernel_events=[KernelEvent(**event) for event in entry["kernel_events"]],
                     state_source=entry["state_source"], sysctls=[tuple(pair) for pair in entry["sysctls"]],
                     timers=[PendingTimer(**timer) for timer in entry["timers"]], first_try=_failure_of(entry["first_try"]),
                     kernel=entry.get("kernel", ""))


def read_json(path: str) -> list[RunResult]:
    """The runs a ``--json`` output holds (``tcplab run --all --json > FILE``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [from_dict(entry) for entry in json.load(handle)]
    except OSError as error:
        raise BadInput(f"{path}: {error.strerror}; give the file `tcplab run --all --json` wrote") from None
    except (ValueError, KeyError, TypeError) as error:
        raise BadInput(f"{path}: not the JSON of `tcplab run --json` ({type(error).__name__}: {error}); "
                       "write it again with `tcplab run --all --json > FILE`") from None


@dataclass(frozen=True)
class Case:
    """One JUnit testcase: a run of ``tcplab run`` or ``verify``, or a selftest's (script, family)."""

    classname: str
    name: str
    file: str
    seconds: float
    failure: tuple[str, str] | None = None  # (message, the report)
    skipped: str | None = None  # why it was not run
    output: str = ""  # what else was said of it (made again, notes)


def run_case(suite: str, outcome: RunResult, capture: str | None = None) -> Case:
    """A run as a testcase named by its script and family; a checked ``capture`` names it instead, so that
    several captures checked against one script stay apart."""
    failure = None if outcome.passed else (outcome.failure.message if outcome.failure else "failed",
                                           render_failure(outcome))
    said = ([made_again(outcome.first_try)] if outcome.first_try else []) + list(outcome.notes)
    name, file = (f"ipv{outcome.family}", outcome.path) if capture is None else (capture.rsplit("/", 1)[-1], capture)
    return Case(f"{suite}.{outcome.case}", name, file, outcome.duration, failure, output="\n".join(said))


def write_junit(path: str, suite: str, cases: list[Case]) -> None:
    """A JUnit XML file: one testcase per case, a failure's report as its text, CI systems show it."""
    failures = sum(case.failure is not None for case in cases)
    skipped = sum(case.skipped is not None for case in cases)
    total_time = f"{sum(case.seconds for case in cases):.3f}"
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures), time=total_time)
    tree = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                         skipped=str(skipped), errors="0", time=total_time)
    for case in cases:
        element = ET.SubElement(tree, "testcase", classname=case.classname, name=case.name, file=case.file,
                                time=f"{case.seconds:.3f}")
        if case.failure is not None:
            ET.SubElement(element, "failure", message=case.failure[0]).text = case.failure[1]
        if case.skipped is not None:
            ET.SubElement(element, "skipped", message=case.skipped)
        if case.output:
            ET.SubElement(element, "system-out").text = case.output
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
