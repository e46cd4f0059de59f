"""Results CI can read: JSON on stdout and JUnit XML, for ``run`` and ``verify``.

One entry per (script, family). JSON keeps the failure's parts (line, kind,
message, expected, actual, differing fields), the trace's steps as data and
the lab's own actions with their lateness, so a CI step or a tool can act on
them; JUnit carries the same report as the failure text, which CI systems show.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from lab.judge.trace import RunResult
from lab.views.report import made_again, render_failure


def _failure_dict(failure) -> dict | None:
    return None if failure is None else {
        "line": failure.line, "kind": failure.kind, "message": failure.message, "expected": failure.expected,
        "actual": failure.actual, "fields": list(failure.fields),
    }


def as_dict(outcome: RunResult) -> dict:
    return {
        "name": outcome.case,
        "path": outcome.path,
        "family": outcome.family,
        "passed": outcome.passed,
        "duration_s": round(outcome.duration, 4),
        "failure": _failure_dict(outcome.failure),
        "first_try": _failure_dict(outcome.first_try),  # lab-late: this run was made again uncrowded
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


def write_junit(path: str, outcomes: list[RunResult], suite: str) -> None:
    """A JUnit XML file: one testcase per (script, family), the report as the failure text."""
    failures = sum(not outcome.passed for outcome in outcomes)
    total_time = sum(outcome.duration for outcome in outcomes)
    root = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failures), time=f"{total_time:.3f}")
    tree = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures),
                         errors="0", time=f"{total_time:.3f}")
    for outcome in outcomes:
        case = ET.SubElement(tree, "testcase", classname=f"{suite}.{outcome.case}", name=f"ipv{outcome.family}",
                             file=outcome.path, time=f"{outcome.duration:.3f}")
        if not outcome.passed:
            failed = ET.SubElement(case, "failure", message=outcome.failure.message if outcome.failure else "failed")
            failed.text = render_failure(outcome)
        said = ([made_again(outcome.first_try)] if outcome.first_try else []) + list(outcome.notes)
        if said:
            ET.SubElement(case, "system-out").text = "\n".join(said)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
