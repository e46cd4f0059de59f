"""The course: one row per claim the teaching articles make, with the lines that prove its finding.

Rows live in lab/course/exercises/claims.toml. Each names its seed article, quotes
the sentence verbatim (Chinese), paraphrases it in English, gives a verdict
word and the finding in both languages, and lists its evidence as
``EXERCISE#LABEL``: the script or experiment line carrying ``#LABEL`` in
its comment, which must assert something (a kernel segment, a state, a
syscall's result, a tcp_info check, or an experiment's check). A finding
holds on a run only when every one of its lines passed there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cache, cached_property
from pathlib import Path

from lab.course.catalogue import FOLDER, find, parsed, read_toml
from lab.errors import BadInput
from lab.judge.trace import LAB_LATE
from lab.views.i18n import LANGUAGES, say
from lab.course.labels import code_at, labels

CLAIMS_FILE = FOLDER / "claims.toml"
KERNEL_FUNCTIONS_FILE = Path(__file__).with_name("kernel_functions.toml")  # the functions cited, checked in 6.18
VERDICTS = ("confirmed", "refined", "refuted", "untestable")
FAMILIES = (4, 6)


@dataclass(frozen=True)
class Evidence:
    """One line that asserts a fact of a finding."""

    exercise: str
    label: str
    path: str  # the script or experiment file
    line: int
    text: str  # the line as written, without its comment

    @property
    def ref(self) -> str:
        return f"{self.exercise}#{self.label}"

    @property
    def where(self) -> str:
        """file:line as a reader finds it in the source tree."""
        folder = "lab/course/exercises" if self.path.endswith(".pkt") else "lab/course/experiments"
        return f"{folder}/{Path(self.path).name}:{self.line}"


@dataclass(frozen=True)
class Claim:
    id: str
    source: str  # the seed article's file name
    quote: str  # the article's sentence, verbatim
    claim_en: str
    short_en: str
    short_zh: str
    verdict: str
    finding_en: str
    finding_zh: str
    evidence_refs: tuple[str, ...]  # EXERCISE#LABEL, as claims.toml writes them (checked when loaded)
    kernel: tuple[str, ...] = ()  # FILE:FUNCTION in Linux 6.18 where the behaviour is decided
    rfc: tuple[str, ...] = ()  # "RFC 9293 3.6.1": where the standard says what the article speaks of

    def short(self, language: str) -> str:
        return self.short_zh if language == "zh" else self.short_en

    def finding(self, language: str) -> str:
        return self.finding_zh if language == "zh" else self.finding_en

    @cached_property
    def evidence(self) -> tuple[Evidence, ...]:
        """The lines its evidence labels, found on first use: `tcplab list` never reads the scripts for them."""
        return tuple(_evidence(self.id, ref) for ref in self.evidence_refs)

    @property
    def exercises(self) -> tuple[str, ...]:
        """The exercises its evidence comes from, in order of first mention."""
        return tuple(dict.fromkeys(ref.partition("#")[0] for ref in self.evidence_refs))


_TEXT_FIELDS = tuple(f.name for f in fields(Claim) if f.name not in ("id", "evidence_refs", "kernel", "rfc"))
KERNEL_REF = re.compile(r"[a-z0-9_/-]+\.[ch]:[A-Za-z_][A-Za-z0-9_]*")  # net/ipv4/tcp_minisocks.c:tcp_time_wait
RFC_REF = re.compile(r"RFC [1-9][0-9]*( [0-9]+(\.[0-9]+)*)?")  # RFC 9293 3.6.1


def _references(where: str, row: dict, name: str, pattern: re.Pattern, form: str) -> tuple[str, ...]:
    """A row's ``kernel`` or ``rfc`` list, each entry of the form ``form``."""
    refs = row.get(name, [])
    if not isinstance(refs, list) or not all(isinstance(ref, str) and pattern.fullmatch(ref) for ref in refs):
        raise BadInput(f"{where}: {name} must be a list of {form!r} strings; got {refs!r}")
    if len(set(refs)) != len(refs):
        raise BadInput(f"{where}: {name} names one reference twice: {refs!r}")
    return tuple(refs)


def pinned_functions() -> tuple[str, set[str]]:
    """The release kernel_functions.toml was checked against, and the FILE:FUNCTION references it lists."""
    pinned = read_toml(KERNEL_FUNCTIONS_FILE)
    return pinned["release"], {f"{path}:{name}" for path, names in pinned["files"].items() for name in names}


def kernel_where(ref: str) -> str:
    """``net/ipv4/tcp_input.c:tcp_fin`` as a reader looks it up: ``net/ipv4/tcp_input.c tcp_fin()``."""
    path, _, function = ref.partition(":")
    return f"{path} {function}()"


def reference_lines(claim: Claim, language: str, code: bool = False) -> list[str]:
    """Where the behaviour is decided (kernel functions) and, where the article speaks of it, the standard;
    ``code`` puts each kernel reference in Markdown backticks."""
    mark, separator = "`" if code else "", say("separator", language)
    lines = []
    if claim.kernel:
        refs = separator.join(f"{mark}{kernel_where(ref)}{mark}" for ref in claim.kernel)
        lines.append(say("kernel line", language, refs=refs))
    if claim.rfc:
        lines.append(say("standard line", language, refs=separator.join(claim.rfc)))
    return lines


def _evidence_ref(claim_id: str, ref: str) -> str:
    """``EXERCISE#LABEL`` checked as far as it can be without reading a script: its form and its exercise."""
    where = f"{CLAIMS_FILE.name}: [{claim_id}]"
    name, _, label = ref.partition("#")
    if not label:
        raise BadInput(f"{where}: evidence {ref!r} is not EXERCISE#LABEL; add the label to the line's comment")
    try:
        find(name)
    except BadInput:
        raise BadInput(f"{where}: evidence {ref!r} names no exercise; `tcplab list` shows them") from None
    return ref


def _evidence(claim_id: str, ref: str) -> Evidence:
    """Resolve ``EXERCISE#LABEL`` to its line (a scan for the label; whether the line asserts something
    needs the script parsed, which ``check_evidence`` does for ``tcplab claims`` and the tests)."""
    where = f"{CLAIMS_FILE.name}: [{claim_id}]"
    name, _, label = _evidence_ref(claim_id, ref).partition("#")
    path = str(find(name).script)
    try:
        line = labels(path)[label]
    except ValueError as error:
        raise BadInput(f"{where}: {error}") from None
    except KeyError:
        raise BadInput(f"{where}: no line of {path} carries #{label}; label the asserting line") from None
    return Evidence(name, label, path, line, code_at(path, line))


def check_evidence(claim: Claim) -> None:
    """Every evidence line of ``claim`` checks something the kernel did (a script's line, parsed)."""
    for item in claim.evidence:
        if item.path.endswith(".pkt") and not _asserts(item.path, item.line):
            raise BadInput(f"{item.path}:{item.line}: #{item.label} (evidence of [{claim.id}]) is on a line that "
                           "asserts nothing; label a `>` segment, a state line, a syscall with its result or a "
                           "%{ }% check")


@cache
def _events(path: str) -> dict:
    """A script's events by line (each script is parsed once however many claims cite it)."""
    return {event.line: event for event in parsed(path).events}


def _asserts(path: str, line: int) -> bool:
    """Whether the script's event at ``line`` checks something the kernel did."""
    from lab.script.events import ELLIPSIS, CodeEvent, PacketEvent, StateEvent, SyscallEvent

    event = _events(path).get(line)
    if isinstance(event, PacketEvent):
        return not event.inbound
    if isinstance(event, SyscallEvent):
        return event.result is not ELLIPSIS
    return isinstance(event, StateEvent | CodeEvent)


@cache
def claims() -> tuple[Claim, ...]:
    """Every claim row, in the order of the articles."""
    rows = read_toml(CLAIMS_FILE)
    found = []
    for claim_id, row in rows.items():
        where = f"{CLAIMS_FILE.name}: [{claim_id}]"
        unknown = set(row) - set(_TEXT_FIELDS) - {"evidence", "kernel", "rfc"}
        missing = [name for name in _TEXT_FIELDS if not isinstance(row.get(name), str) or not row[name].strip()]
        if unknown or missing:
            raise BadInput(f"{where}: fields missing or empty: {missing or '-'}; unknown: {sorted(unknown) or '-'}")
        if row["verdict"] not in VERDICTS:
            raise BadInput(f"{where}: verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
        refs = row.get("evidence", [])
        if (row["verdict"] == "untestable") != (not refs):
            raise BadInput(f"{where}: a tested claim needs evidence, and an untestable one has none")
        evidence = tuple(_evidence_ref(claim_id, ref) for ref in refs)
        kernel = _references(where, row, "kernel", KERNEL_REF, "FILE.c:FUNCTION")
        rfc = _references(where, row, "rfc", RFC_REF, "RFC NUMBER SECTION")
        found.append(Claim(claim_id, *(row[name] for name in _TEXT_FIELDS), evidence_refs=evidence, kernel=kernel,
                           rfc=rfc))
    return tuple(found)


def find_claim(claim_id: str) -> Claim:
    for claim in claims():
        if claim.id == claim_id:
            return claim
    raise BadInput(f"{claim_id}: no such claim in {CLAIMS_FILE.name}")


def main_claim(exercise) -> Claim:
    """The claim an exercise mainly tests (its catalogue entry names it)."""
    return find_claim(exercise.claim_id)


def listing(exercise) -> dict[str, object]:
    """An exercise with its main claim, as ``tcplab list --json`` prints it."""
    claim = main_claim(exercise)
    return {"name": exercise.name, "title": exercise.title, "title_zh": exercise.title_zh, "mode": exercise.mode,
            "runtime_s": round(exercise.runtime, 2), "claim_id": claim.id, "claim": claim.claim_en,
            "quote": claim.quote, "source": claim.source, "verdict": claim.verdict}


# -- results of a run ---------------------------------------------------------


def line_passed(evidence: Evidence, outcome) -> bool:
    """Whether ``evidence``'s line passed in a finished run.

    A run executes its lines in order and stops at the first that fails, so
    every line before the failing one passed; that line and the rest did not.
    """
    if outcome.passed:
        return True
    failing = outcome.failure.line if outcome.failure else 0
    return 0 < evidence.line < failing


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    lines: tuple[dict[int, bool], ...]  # per evidence line: family -> passed (absent: not run)
    again: tuple[frozenset[int], ...]  # per evidence line: the families whose run was made again uncrowded
    differs: str = ""  # the first evidence line that did not pass, with its run's failure: where a release differs
    failed: tuple[str, int, str] = ()  # that run's exercise, failing line and message (for releases.explain)

    def family_passed(self, family: int) -> bool | None:
        """True when every line passed in ``family``; None when nothing ran (untestable)."""
        if not self.lines:
            return None
        return all(line.get(family, False) for line in self.lines)

    @property
    def passed(self) -> bool:
        return all(self.family_passed(family) is not False for family in FAMILIES)


def evaluate(outcomes) -> list[ClaimResult]:
    """Each claim's evidence, looked up in the outcomes (keyed by exercise name and family)."""
    by_run = {(outcome.case, outcome.family): outcome for outcome in outcomes}
    results = []
    for claim in claims():
        lines, again, differs, failed = [], [], "", ()
        for item in claim.evidence:
            runs = {family: by_run[(item.exercise, family)] for family in FAMILIES if (item.exercise, family) in by_run}
            lines.append({family: line_passed(item, run) for family, run in runs.items()})
            again.append(frozenset(family for family, run in runs.items() if run.first_try is not None))
            for family in FAMILIES:
                if not differs and not lines[-1].get(family, False):
                    run = runs.get(family)
                    failure = run.failure if run else None
                    if failure is None:
                        differs = f"{item.where} (IPv{family}): not run"
                    elif failure.kind == LAB_LATE:  # nothing from that line on was judged: not the kernel's answer
                        differs = f"{NOT_JUDGED}: the lab was late at line {failure.line} ({item.where}, IPv{family})"
                    else:
                        differs = f"{item.where} (IPv{family}): the run failed at line {failure.line}: {failure.message}"
                        failed = (item.exercise, failure.line, failure.message)
        results.append(ClaimResult(claim, tuple(lines), tuple(again), differs, failed))
    return results


NOT_JUDGED = "not judged"


def release_word(result: ClaimResult, language: str) -> str:
    """A claim's result on another release: pass, fail, or not judged (its runs there were the lab's late)."""
    if result.differs.startswith(NOT_JUDGED):
        return say("not judged", language)
    return _result_word(result.passed if result.lines else None, language)


def by_release(outcomes) -> dict[str, list]:
    """Runs grouped by the kernel release they ran on (runs read back from several kernels' JSON)."""
    import platform

    groups: dict[str, list] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.kernel or platform.release(), []).append(outcome)
    return groups


def exercises_involved() -> list[str]:
    """The exercises any claim's evidence comes from, in catalogue order."""
    from lab.course.catalogue import exercises

    wanted = {name for claim in claims() for name in claim.exercises}
    return [exercise.name for exercise in exercises() if exercise.name in wanted]


# -- documents ----------------------------------------------------------------


def _result_word(passed: bool | None, language: str) -> str:
    return say("not run" if passed is None else "pass" if passed else "fail", language)


def markdown(results: list[ClaimResult], language: str, release: str,
             others: dict[str, list[ClaimResult]] | None = None) -> str:
    """docs/claims.md (English) or docs/claims.zh.md (Chinese); ``others``: the same claims judged on other
    kernel releases, a column each and, under a claim, the line where a release differs."""
    assert language in LANGUAGES
    others = others or {}
    elsewhere = {claim_id: {name: result for name, results_there in others.items() for result in results_there
                            if result.claim.id == claim_id} for claim_id in (r.claim.id for r in results)}
    counts = {verdict: sum(r.claim.verdict == verdict for r in results) for verdict in VERDICTS}
    count_text = say("separator", language).join(say("count", language, n=counts[v], word=say(v, language))
                                                for v in VERDICTS if counts[v])
    out = [f"# {say('claims title', language)}", "", say("claims intro", language, release=release), "",
           say("counts", language, total=len(results), counts=count_text), "",
           f"| | {say('claim', language)} | {say('verdict', language)} | IPv4 | IPv6 |"
           + "".join(f" {name} |" for name in others), "|---|---|---|---|---|" + "---|" * len(others)]
    for result in results:
        claim = result.claim
        cells = [f"[{claim.id}](#{claim.id})", claim.short(language), say(claim.verdict, language),
                 _result_word(result.family_passed(4), language), _result_word(result.family_passed(6), language),
                 *(release_word(there, language) for there in elsewhere[claim.id].values())]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    for result in results:
        claim = result.claim
        out += ["", f"## {claim.id}", "", f"> {claim.quote}", ">",
                f"> — {say('article', language)} `{claim.source}`", ""]
        if language == "en":
            out += [f"**{say('claim heading', language)}** {claim.claim_en}", ""]
        verdict = say("verdict heading", language, word=say(claim.verdict, language))
        out += [f"**{verdict}** {claim.finding(language)}", ""]
        for line in reference_lines(claim, language, code=True):
            out += [line, ""]
        if not claim.evidence:
            out.append(f"*{say('evidence', language)}: {say('no evidence', language)}*")
            continue
        out += [say("evidence heading", language, release=release), ""]
        for item, passed, again in zip(claim.evidence, result.lines, result.again, strict=True):
            runs = say("separator", language).join(f"IPv{family} {_result_word(passed.get(family), language)}"
                             + (f" ({say('made again', language)})" if family in again else "") for family in FAMILIES)
            out.append(f"- `{item.where}` `{item.text}` — {runs}")
        differing = {name: there.differs for name, there in elsewhere[claim.id].items() if there.differs}
        if others:
            out += ["", say("releases heading", language, releases=say("separator", language).join(others)), ""]
            colon = "：" if language == "zh" else ": "
            for name in others:
                out.append(f"- Linux {name}{colon}" + (f"`{differing[name]}`" if name in differing else
                                                      _result_word(True, language)))
                change = _explained(name, elsewhere[claim.id][name])
                if change:
                    out.append("  " + say("release change", language, since=change.since_text, change=change.change,
                                          why=change.why(language)))
    return "\n".join(out) + "\n"


def as_json(results: list[ClaimResult], release: str,
            others: dict[str, list[ClaimResult]] | None = None) -> list[dict[str, object]]:
    """docs/claims.json: one object per claim (with ``others``, its result on each other release)."""
    others = others or {}
    entries = []
    for result in results:
        claim = result.claim
        entries.append({
            "id": claim.id, "source": claim.source, "quote": claim.quote, "claim_en": claim.claim_en,
            "short_en": claim.short_en, "short_zh": claim.short_zh, "verdict": claim.verdict,
            "finding_en": claim.finding_en, "finding_zh": claim.finding_zh, "exercises": list(claim.exercises),
            "decided_in": [{"file": ref.partition(":")[0], "function": ref.partition(":")[2]} for ref in claim.kernel],
            "rfc": list(claim.rfc),
            "evidence": [{"exercise": item.exercise, "label": item.label, "file": item.where.rsplit(":", 1)[0],
                          "line": item.line, "text": item.text,
                          "results": {f"ipv{family}": _json_result(passed.get(family)) for family in FAMILIES},
                          "made_again": [f"ipv{family}" for family in sorted(again)]}
                         for item, passed, again in zip(claim.evidence, result.lines, result.again, strict=True)],
            "results": {f"ipv{family}": _json_result(result.family_passed(family)) for family in FAMILIES},
            "kernel": release,
        })
        if others:
            entries[-1]["releases"] = {
                name: {"result": NOT_JUDGED if there.differs.startswith(NOT_JUDGED)
                       else _json_result(there.passed if there.lines else None), "differs": there.differs,
                       **({"explained_by": {"since": change.since_text, "change": change.change, "why_en": change.why_en,
                                            "why_zh": change.why_zh}} if (change := _explained(name, there)) else {})}
                for name, results_there in others.items() for there in results_there
                if there.claim.id == result.claim.id}
    return entries


def _explained(release: str, result: ClaimResult):
    """The Linux change behind ``result``'s difference on ``release``, when a known one explains it."""
    from lab.course.releases import explain

    return explain(release, *result.failed) if result.failed else None


def _json_result(passed: bool | None) -> str:
    return "not run" if passed is None else "pass" if passed else "fail"
