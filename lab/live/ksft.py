"""The kernel's packetdrill selftests, run unmodified the way ksft_runner.sh runs them.

ksft_runner.sh runs every script once per address family (both, unless the
script's ``--ip_version=`` line names one), from the script's folder (so its
``defaults.sh`` is found), IPv6 with an MTU of 1520, and with ``-D`` defines
for its own addresses: the Fast Open cookies the kernel computes for them and
the control-message level and type of the family. tcplab runs the same
scripts on its own address plan, so it derives the cookies for its addresses.

Each (script, family) ends as ``pass``, ``fail`` or ``skip``: a script that
uses something tcplab does not speak is a skip that names the construct and
its file:line, never a crash and never a silent pass.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import tempfile
import time
import dataclasses
from dataclasses import dataclass

from lab.judge.trace import LAB_LATE, Failure, RunResult
from lab.errors import BadInput
from lab.tcp.fastopen import cookie
from netns.addresses import KERNEL_ADDRESSES, LAB_ADDRESSES

# defaults.sh sets this key; ksft_runner.sh's TFO_COOKIE is the kernel's cookie under it.
FASTOPEN_KEY = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"
ZERO_KEY = "0-0-0-0"  # TFO_COOKIE_ZERO: scripts that set an all-zero key
CMSG_DEFINES = {4: {"CMSG_LEVEL_IP": "SOL_IP", "CMSG_TYPE_RECVERR": "IP_RECVERR"},
                6: {"CMSG_LEVEL_IP": "SOL_IPV6", "CMSG_TYPE_RECVERR": "IPV6_RECVERR"}}
RUNNER_FAMILIES = {"ipv4": 4, "ipv6": 6}


def defines_for(family: int) -> dict[str, str]:
    """ksft_runner.sh's ``-D`` defines, for the lab's addresses: a SYN from the lab to the kernel."""
    source, destination = LAB_ADDRESSES.address(family), KERNEL_ADDRESSES.address(family)
    return {"TFO_COOKIE": cookie(FASTOPEN_KEY, source, destination),
            "TFO_COOKIE_ZERO": cookie(ZERO_KEY, source, destination), **CMSG_DEFINES[family]}


def script_families(path: str, text: str) -> tuple[int, ...]:
    """The families ksft_runner.sh runs a script in: its ``--ip_version=`` lines, else both."""
    versions = re.findall(r"^--ip_version=(\S+)", text, flags=re.MULTILINE)
    if not versions:
        return (4, 6)
    if len(versions) > 1 or versions[0] not in RUNNER_FAMILIES:
        raise BadInput(f"{path}: too many or unsupported --ip_version lines: {' '.join(versions)} "
                       "(the selftests' runner takes one, ipv4 or ipv6)")
    return (RUNNER_FAMILIES[versions[0]],)


@dataclass(frozen=True)
class Selftest:
    """One script of the folder, shaped for the batch runner (its ``length`` orders the work)."""

    path: str
    length: float = 0.0
    problem: str = ""  # why it cannot run at all (its --ip_version line), a skip in every family

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class SelftestResult:
    """How one (script, family) ended, and why."""

    script: str  # the file name, as ksft_runner.sh names it
    family: int
    result: str  # pass, fail or skip
    reason: str = ""  # the first line of the failure, or what tcplab does not support and where
    report: str = ""  # the full mismatch report of a failure
    duration: float = 0.0
    path: str = ""
    failure: Failure | None = None  # the run's failure: its kind tells the batch whether to make it again
    first_try: Failure | None = None  # a first try that was no verdict on the kernel, which this run replaces
    run: RunResult | None = None  # a failed run, whole: its capture and its steps for the page CI keeps

    def as_dict(self) -> dict:
        first_try = None if self.first_try is None else f"{self.path}:{self.first_try.line}: {self.first_try.message}"
        return {"script": self.script, "family": self.family, "kernel": platform.release(), "result": self.result,
                "reason": self.reason,
                "path": self.path, "duration_s": round(self.duration, 4), "first_try": first_try}


def collect(folder: str) -> list[Selftest]:
    """Every ``.pkt`` in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise BadInput(f"{folder}: not a folder; give the folder of the selftests' .pkt scripts")
    names = sorted(name for name in os.listdir(folder) if name.endswith(".pkt"))
    if not names:
        raise BadInput(f"{folder}: no .pkt scripts in this folder")
    return [Selftest(os.path.join(folder, name)) for name in names]


def plan(selftests: list[Selftest], asked: tuple[int, ...]) -> list[tuple[Selftest, int]]:
    """The (script, family) pairs to run, as ksft_runner.sh chooses them, restricted to ``asked``."""
    from lab.script.parser import parse_file

    pairs = []
    for selftest in selftests:
        with open(selftest.path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        try:
            families = script_families(selftest.path, text)
        except BadInput as error:
            pairs.extend((Selftest(selftest.path, problem=str(error)), family) for family in asked)
            continue
        try:
            length = parse_file(selftest.path, defines_for(families[0])).length
        except BadInput:
            length = 0.0  # it will be a skip; the reason is found again when it "runs"
        for family in families:
            if family in asked:
                pairs.append((Selftest(selftest.path, length), family))
    return pairs


# packetdrill flags the run need not act on: --define is read by the parser; tcplab never reuses a send
# buffer (each call gets its own); the runner's addresses are mapped onto the lab's own plan.
NO_EFFECT_OPTIONS = {"define", "send_omit_free", "local_ip", "remote_ip", "gateway_ip", "netmask_ip"}


def _unsupported_options(script) -> list[str]:
    """Option lines tcplab does not act on: running without them could pass silently."""
    from lab.script.settings import BY_NAME

    return [f"--{name}" + (f"={value}" if value else "") for name, value in script.options.items()
            if name not in BY_NAME.keys() | NO_EFFECT_OPTIONS]


@contextlib.contextmanager
def _own_nstat_history():
    """A history file of nstat's for this run alone: by default nstat keeps one per user, and two runs at
    once (-j) that call ``nstat -n`` and ``nstat`` in their shell lines would read each other's counts."""
    previous = os.environ.get("NSTAT_HISTORY")
    with tempfile.TemporaryDirectory(prefix="tcplab-nstat-") as folder:
        os.environ["NSTAT_HISTORY"] = os.path.join(folder, "history")
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("NSTAT_HISTORY", None)
            else:
                os.environ["NSTAT_HISTORY"] = previous


def run_selftest(selftest: Selftest, family: int, settings) -> SelftestResult:
    """Run one (script, family); anything tcplab cannot run is a skip, and so is a run the lab was late
    in (the lab's fault, not the kernel's: nothing after that line was judged; the batch makes it again).

    Shell lines run from the script's folder (the runner's rule), so ``source ./defaults.sh`` works.
    """
    from lab.views.report import render_failure
    from lab.live.preflight import preflight
    from lab.live.runner import run_script
    from lab.script.parser import parse_file

    started = time.monotonic()
    if selftest.problem:
        return SelftestResult(selftest.name, family, "skip", selftest.problem, path=selftest.path)

    def ended(result: str, reason: str, report: str = "", failure: Failure | None = None) -> SelftestResult:
        return SelftestResult(selftest.name, family, result, reason, report, time.monotonic() - started,
                              selftest.path, failure)

    try:
        script = parse_file(selftest.path, defines_for(family))
        unsupported = _unsupported_options(script)
        if unsupported:
            return ended("skip", f"{selftest.path}: option line {unsupported[0]} is not supported by tcplab")
        preflight(script, settings)
        with _own_nstat_history():
            outcome = run_script(script, family, settings)
    except BadInput as error:
        return ended("skip", str(error))
    if outcome.passed:
        return ended("pass", "")
    failure = outcome.failure
    reason = f"{selftest.path}:{failure.line}: {failure.message}"
    if failure.kind == LAB_LATE:  # nothing after that line was judged: not the kernel's result
        return ended("skip", f"not judged, the lab was late: {reason}", render_failure(outcome), failure)
    return dataclasses.replace(ended("fail", reason, render_failure(outcome), failure), run=outcome)
