"""Every evidence line of the course can fail: changing the value it asserts fails the run at that line.

A claim's finding rests on labelled lines (claims.toml: ``EXERCISE#LABEL``). For each label in a script
exercise, the value its line asserts is changed, the script runs against the kernel (IPv4, one batch of
worker processes, as `make run` runs the catalogue), and the run must fail at exactly that line: the
line, and so the claims resting on it, would not pass (lab/course/claims.py ``line_passed``). A label
whose mutation passes, or fails elsewhere, asserts nothing for the fact it is cited for.

The change, by what the line asserts:
- a segment the kernel sends: its ack + 1; a SYN without one: a SYN-ACK's flags (a SYN's seq is its ISN,
  learnt from it, so changing it says nothing); else its sequence range moved by one;
- a state line: ESTABLISHED (LISTEN for an ESTABLISHED line);
- a syscall: another errno; a descriptor (socket, accept, ...): -1 EINVAL, since the lab numbers
  descriptors as the script writes them; another return value otherwise;
- a %{ }% block: its first assert negated.
Labels in experiments (Python checks) are covered by their own tests (tests/test_course.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from lab.course.claims import claims
from lab.live.batch import default_jobs, run_many
from lab.script.events import CodeEvent, PacketEvent, StateEvent, SyscallEvent
from lab.script.parser import parse
from lab.script.settings import Settings

DESCRIPTOR_CALLS = ("socket", "accept", "accept4", "open", "dup")


def mutated(line: str, event) -> str:
    """``line`` with the value it asserts changed (its comment kept)."""
    code, sep, comment = line.partition("//")
    if isinstance(event, PacketEvent):
        ack = re.search(r"\back (\d+)", code)
        if ack:
            code = code[:ack.start(1)] + str(int(ack.group(1)) + 1) + code[ack.end(1):]
        elif "S" in event.flags:
            flags = re.search(r"> (\S+) \d+:", code)
            code = code[:flags.end(1)] + "." + code[flags.end(1):]
        else:
            numbers = re.search(r"(\d+):(\d+)\((\d+)\)", code)
            start, end, length = map(int, numbers.groups())
            code = code[:numbers.start()] + f"{start + 1}:{end + 1}({length})" + code[numbers.end():]
    elif isinstance(event, StateEvent):
        other = "LISTEN" if event.state == "ESTABLISHED" else "ESTABLISHED"
        code = re.sub(rf"\bstate {event.state}\b", f"state {other}", code, count=1)
    elif isinstance(event, SyscallEvent):
        result = re.search(r"= (-?\d+)(?: (E[A-Z0-9]+))?", code)
        if result.group(2):
            other = "EPERM" if result.group(2) != "EPERM" else "EINVAL"
            code = code[:result.start(2)] + other + code[result.end(2):]
        elif event.name in DESCRIPTOR_CALLS:
            code = code[:result.start(1)] + "-1 EINVAL" + code[result.end(1):]
        else:
            code = code[:result.start(1)] + str(int(result.group(1)) + 1) + code[result.end(1):]
    elif isinstance(event, CodeEvent):
        code = code.replace("assert ", "assert not ", 1)
    return code + sep + comment


@dataclass(frozen=True)
class Mutation:
    ref: str  # EXERCISE#LABEL
    line: int
    text: str  # the changed line


def mutations(folder) -> tuple[list[Mutation], list]:
    """One mutation per evidence label of a script exercise, and the batch jobs that run them (each job's
    capture path, unique, tells its result apart)."""
    found, jobs, seen = [], [], set()
    for claim in claims():
        for item in claim.evidence:
            if not item.path.endswith(".pkt") or item.ref in seen:
                continue
            seen.add(item.ref)
            lines = open(item.path, encoding="utf-8").read().split("\n")
            event = next(e for e in parse("\n".join(lines), item.path).events if e.line == item.line)
            lines[item.line - 1] = mutated(lines[item.line - 1], event)
            found.append(Mutation(item.ref, item.line, lines[item.line - 1].strip()))
            jobs.append((parse("\n".join(lines), item.path), 4, Settings(pcap=str(folder / f"{len(jobs)}.pcapng"))))
    return found, jobs


def test_the_mutation_changes_what_each_kind_of_line_asserts():
    def one(text):
        return parse(text + "\n", "t.pkt").events[0]

    assert mutated("+0 > F. 1:1(0) ack 102 // #fin", one("+0 > F. 1:1(0) ack 102")) == "+0 > F. 1:1(0) ack 103 // #fin"
    assert mutated("+0 > S 0:0(0) <...>", one("+0 > S 0:0(0) <...>")) == "+0 > S. 0:0(0) <...>"
    assert mutated("+0 > P. 1:11(10)", one("+0 > P. 1:11(10)")) == "+0 > P. 2:12(10)"
    assert mutated("+0 state TIME_WAIT", one("+0 state TIME_WAIT")) == "+0 state ESTABLISHED"
    assert mutated("+0 read(4, ..., 10) = -1 ECONNRESET", one("+0 read(4, ..., 10) = -1 ECONNRESET")) == \
        "+0 read(4, ..., 10) = -1 EPERM"
    assert mutated("+0 accept(3, ..., ...) = 4", one("+0 accept(3, ..., ...) = 4")) == "+0 accept(3, ..., ...) = -1 EINVAL"
    assert mutated("+0 write(4, ..., 10) = 10", one("+0 write(4, ..., 10) = 10")) == "+0 write(4, ..., 10) = 11"


@pytest.mark.xdist_group("batches")  # a batch of its own, not beside another
def test_every_evidence_line_fails_when_what_it_asserts_is_changed(tmp_path):
    found, jobs = mutations(tmp_path)
    assert len(found) >= 100
    uncaught = []
    for result in run_many(jobs, default_jobs(), again_uncrowded=True):
        mutation = found[int(result.pcap.rsplit("/", 1)[1].split(".")[0])]
        if result.passed or result.failure.line != mutation.line:
            verdict = "passed" if result.passed else f"failed at line {result.failure.line}: {result.failure.message}"
            uncaught.append(f"{mutation.ref} ({mutation.text}): {verdict}")
    assert uncaught == []
