"""The course's claims: loader, evidence labels, evaluation and the documents (no privileges, no kernel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lab.course import claims as course
from lab.course.catalogue import exercises
from lab.course.claims import (
    VERDICTS,
    main_claim,
    Claim,
    ClaimResult,
    as_json,
    claims,
    evaluate,
    line_passed,
    markdown,
)
from lab.judge.trace import LAB_LATE, Failure, RunResult
from lab.errors import BadInput
from lab.course.labels import labels

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
ARTICLES = ("000_e96bb92640c7751d.txt", "001_f2be7db29f51b6a9.txt", "002_eb75143f5f003d83.txt",
            "003_1cd90dc9a77fac15.txt", "004_a7959eb092ffe875.txt")


def ran(exercise: str, family: int, failure: Failure | None = None, first_try: Failure | None = None) -> RunResult:
    """A finished run as the claims see it: which exercise, which family, and where it failed."""
    return RunResult(f"{exercise}.pkt", family, failure, None, 0.0, exercise=exercise, first_try=first_try)


def all_passing() -> list[RunResult]:
    return [ran(e.name, family) for e in exercises() for family in (4, 6)]


def test_forty_or_more_claims_from_every_article_with_valid_verdicts():
    rows = claims()
    assert len(rows) >= 40 and len({c.id for c in rows}) == len(rows)
    assert {c.source for c in rows} == set(ARTICLES)
    for claim in rows:
        assert claim.verdict in VERDICTS
        assert bool(claim.evidence) == (claim.verdict != "untestable"), claim.id  # the loader's rule, both ways
        assert all(ord(char) > 0x2e7f for char in claim.short_zh if char.isalpha() and not char.isascii())


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seed articles are not at {SEEDS}")
def test_every_quote_is_the_articles_own_sentence():
    for claim in claims():
        assert claim.quote in (SEEDS / claim.source).read_text(encoding="utf-8"), claim.id


def test_every_exercise_is_evidence_for_its_main_claim():
    cited = {name for claim in claims() for name in claim.exercises}
    for exercise in exercises():
        assert exercise.name in cited
        assert exercise.name in main_claim(exercise).exercises, exercise.name
        assert exercise.title_zh and exercise.explanation_zh, exercise.name


def test_the_issues_corrections_are_rows_with_runs():
    by_id = {claim.id: claim for claim in claims()}
    assert by_id["001-passive-closed"].verdict == "refined"
    assert "simultaneous-close-observed" in by_id["001-passive-closed"].exercises
    assert by_id["001-close-rst"].verdict == "refuted"
    assert by_id["003-restart-half-open"].verdict == "refuted"
    assert {"restarted-server-rst", "orphan-meets-rst"} <= set(by_id["003-restart-half-open"].exercises)
    assert "keepalive-off" in by_id["000-keepalive-10"].exercises
    assert "orphan-retries-2" in by_id["003-orphan-retries"].exercises
    assert "syncookies-overflow" in by_id["001-syncookies"].exercises
    assert "time-wait-fin-timeout" in by_id["001-fin-timeout"].exercises
    assert "fast-open" in by_id["002-syn-no-data"].exercises
    assert "data-ack" in by_id["001-ack-seq-plus-1"].exercises
    assert by_id["003-power-saving"].verdict == "untestable" and not by_id["003-power-saving"].evidence


def test_evidence_points_at_the_labelled_line():
    claim = next(c for c in claims() if c.id == "000-fin-consumes")
    first = claim.evidence[0]
    assert first.ref == "close-active#ack-u-plus-1"
    assert first.where == f"lab/course/exercises/close-active.pkt:{first.line}"
    assert first.text == "+.04~+.048 > . 1:1(0) ack 102"
    assert "#ack-u-plus-1" in Path(first.path).read_text().splitlines()[first.line - 1]


def test_labels_are_unique_per_file(tmp_path):
    script = tmp_path / "x.pkt"
    script.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // #a\n+0 close(3) = 0 // #b and #c\n")
    assert labels(str(script)) == {"a": 1, "b": 2, "c": 2}
    twice = tmp_path / "y.pkt"
    twice.write_text("0 close(3) = 0 // #a\n+0 close(3) = 0 // #a\n")
    with pytest.raises(ValueError, match="already used on line 1"):
        labels(str(twice))


ROW = """
["x-1"]
source = "000_e96bb92640c7751d.txt"
quote = "q"
claim_en = "c"
short_en = "s"
short_zh = "短"
verdict = "{verdict}"
finding_en = "f"
finding_zh = "发现"
evidence = [{evidence}]
"""


@pytest.mark.parametrize(("verdict", "evidence", "message"), [
    ("confirmed", '"close-active#ack-u-plus-1"', None),
    ("maybe", '"close-active#ack-u-plus-1"', "is not one of"),
    ("confirmed", "", "needs evidence"),
    ("untestable", '"close-active#ack-u-plus-1"', "needs evidence"),
    ("confirmed", '"close-active"', "is not EXERCISE#LABEL"),
    ("confirmed", '"no-such-exercise#x"', "names no exercise"),
    ("confirmed", '"close-active#no-such-label"', "no line of"),
    ("confirmed", '"close-active#ack-u-plus-1"]\nkernel = ["net/ipv4/tcp_input.c tcp_fin"', "kernel must be a list"),
    ("confirmed", '"close-active#ack-u-plus-1"]\nkernel = "net/ipv4/tcp_input.c:tcp_fin"\nrfc = [',
     "kernel must be a list"),
    ("confirmed", '"close-active#ack-u-plus-1"]\nrfc = ["9293 3.6"', "rfc must be a list"),
    ("confirmed", '"close-active#ack-u-plus-1"]\nrfc = ["RFC 9293 3.6", "RFC 9293 3.6"', "names one reference twice"),
])
def test_the_loader_refuses_a_bad_row(tmp_path, monkeypatch, verdict, evidence, message):
    path = tmp_path / "claims.toml"
    path.write_text(ROW.format(verdict=verdict, evidence=evidence), encoding="utf-8")
    monkeypatch.setattr(course, "CLAIMS_FILE", path)
    claims.cache_clear()
    try:
        if message is None:
            (claim,) = claims()
            assert claim.evidence[0].exercise == "close-active"
        else:
            with pytest.raises(BadInput, match=message):
                [claim.evidence for claim in claims()]  # a label is looked for in its script when first used
    finally:
        claims.cache_clear()


def test_kernel_and_rfc_references_load_with_the_row(tmp_path, monkeypatch):
    path = tmp_path / "claims.toml"
    path.write_text(ROW.format(verdict="confirmed", evidence='"close-active#ack-u-plus-1"') +
                    'kernel = ["net/ipv4/tcp_input.c:tcp_fin"]\nrfc = ["RFC 9293 3.6"]\n', encoding="utf-8")
    monkeypatch.setattr(course, "CLAIMS_FILE", path)
    claims.cache_clear()
    try:
        (claim,) = claims()
        assert claim.kernel == ("net/ipv4/tcp_input.c:tcp_fin",) and claim.rfc == ("RFC 9293 3.6",)
    finally:
        claims.cache_clear()


def test_every_tested_claim_cites_kernel_functions_that_exist_in_the_pinned_release():
    """Each row but the untestable names where Linux decides the behaviour, as FILE:FUNCTION; each function is in
    kernel_functions.toml, the list checked against the kernel source release it names."""
    release, pinned = course.pinned_functions()
    assert release == "6.18"
    for claim in claims():
        assert bool(claim.kernel) == (claim.verdict != "untestable"), f"[{claim.id}] kernel references"
        for ref in claim.kernel:
            assert course.KERNEL_REF.fullmatch(ref), f"[{claim.id}] {ref!r} is not FILE.c:FUNCTION"
            assert ref in pinned, f"[{claim.id}] {ref} is not in kernel_functions.toml (checked in Linux {release})"
        for ref in claim.rfc:
            assert course.RFC_REF.fullmatch(ref), f"[{claim.id}] {ref!r} is not RFC NUMBER SECTION"
    cited = {ref for claim in claims() for ref in claim.kernel}
    assert pinned - cited == set(), "kernel_functions.toml lists functions no claim cites"
    assert sum(bool(claim.rfc) for claim in claims()) >= 70


def test_a_toml_error_is_one_line_of_bad_input(tmp_path, monkeypatch):
    path = tmp_path / "claims.toml"
    path.write_text('["x"]\nquote = "a "quoted" word"\n', encoding="utf-8")
    monkeypatch.setattr(course, "CLAIMS_FILE", path)
    claims.cache_clear()
    try:
        with pytest.raises(BadInput, match="claims.toml: .*line 2.*fix the TOML"):
            claims()
    finally:
        claims.cache_clear()


def test_evidence_must_be_a_line_that_asserts(tmp_path, monkeypatch):
    script = tmp_path / "close-active.pkt"
    text = (course.FOLDER / "close-active.pkt").read_text()
    script.write_text(text.replace("   +0 bind(3, ..., ...) = 0", "   +0 bind(3, ..., ...) = 0 // #bind")
                      .replace(" +.01 < F. 101:101(0) ack 1 win 502", " +.01 < F. 101:101(0) ack 1 win 502 // #lab-fin"))
    from lab.course import catalogue

    monkeypatch.setattr(catalogue.Exercise, "script", property(lambda self: script))
    labelled = next(number for number, line in enumerate(text.splitlines(), 1) if "#ack-u-plus-1" in line)
    assert course._evidence("t", "close-active#ack-u-plus-1").line == labelled
    assert course._evidence("t", "close-active#bind").text == "+0 bind(3, ..., ...) = 0"  # a syscall's result
    lab_fin = course._evidence("t", "close-active#lab-fin")
    with pytest.raises(BadInput, match="asserts nothing"):  # a segment the lab injects checks nothing
        course.check_evidence(course.Claim("t", *("x",) * len(course._TEXT_FIELDS),
                                           evidence_refs=(f"{lab_fin.exercise}#{lab_fin.label}",)))


def test_every_evidence_line_of_the_course_asserts_something():
    for claim in claims():
        course.check_evidence(claim)


def test_a_line_passed_when_the_run_passed_or_failed_later():
    item = next(c for c in claims() if c.id == "000-fin-consumes").evidence[0]
    assert line_passed(item, ran("close-active", 4))
    assert line_passed(item, ran("close-active", 4, Failure(item.line + 1, "later")))
    assert not line_passed(item, ran("close-active", 4, Failure(item.line, "this line")))
    assert not line_passed(item, ran("close-active", 4, Failure(item.line - 1, "earlier")))
    assert not line_passed(item, ran("close-active", 4, Failure(0, "setup")))


def test_a_failing_line_fails_its_claims_in_that_family_only():
    item = next(c for c in claims() if c.id == "000-fin-consumes").evidence[0]
    outcomes = [r if (r.exercise, r.family) != ("close-active", 6) else ran("close-active", 6, Failure(item.line, "x"))
                for r in all_passing()]
    results = {r.claim.id: r for r in evaluate(outcomes)}
    assert results["000-fin-consumes"].family_passed(4) is True
    assert results["000-fin-consumes"].family_passed(6) is False and not results["000-fin-consumes"].passed
    assert results["003-power-saving"].family_passed(4) is None and results["003-power-saving"].passed
    assert results["001-tw-2msl-2min"].passed  # no close-active line among its evidence
    failing = {r.claim.id for r in results.values() if not r.passed}
    assert failing == {c.id for c in claims() if any(e.exercise == "close-active" and e.line >= item.line
                                                     for e in c.evidence)}


def test_documents_in_both_languages_and_json():
    outcomes = [r if (r.exercise, r.family) != ("time-wait", 4) else ran("time-wait", 4, Failure(1, "x"))
                for r in all_passing()]
    results = evaluate(outcomes)
    english, chinese = markdown(results, "en", "6.18.44"), markdown(results, "zh", "6.18.44")
    claim = next(c for c in claims() if c.id == "001-tw-2msl-2min")
    for text in (english, chinese):
        assert claim.quote in text and "Linux 6.18.44" in text and claim.evidence[0].where in text
    assert claim.finding_en in english and claim.claim_en in english and "| refuted | FAIL | pass |" in english
    assert claim.finding_zh in chinese and "| 证伪 | 失败 | 通过 |" in chinese and claim.finding_en not in chinese
    entries = json.loads(json.dumps(as_json(results, "6.18.44"), ensure_ascii=False))
    assert len(entries) == len(claims())
    entry = next(e for e in entries if e["id"] == "001-tw-2msl-2min")
    assert {"id", "source", "quote", "claim_en", "verdict", "finding_en", "finding_zh", "exercises", "results",
            "kernel"} <= set(entry)
    assert entry["results"] == {"ipv4": "fail", "ipv6": "pass"} and entry["kernel"] == "6.18.44"
    assert entry["evidence"][0]["results"]["ipv4"] == "fail" and entry["evidence"][0]["line"] > 0
    assert {"file": "net/ipv4/tcp_minisocks.c", "function": "tcp_time_wait"} in entry["decided_in"]
    assert "RFC 9293 3.4.2" in entry["rfc"]
    assert ("decided in the kernel (Linux 6.18): `net/ipv4/tcp_minisocks.c tcp_time_wait()`" in english
            and "standard: RFC 9293 3.4.2, RFC 9293 3.6" in english)
    assert "内核中决定此行为之处（Linux 6.18）：`net/ipv4/tcp_minisocks.c tcp_time_wait()`" in chinese
    assert "标准：RFC 9293 3.4.2" in chinese
    untestable = next(e for e in entries if e["id"] == "003-power-saving")
    assert untestable["results"] == {"ipv4": "not run", "ipv6": "not run"} and untestable["exercises"] == []
    assert untestable["decided_in"] == [] and untestable["rfc"] == []


def test_an_evidence_run_made_again_says_so_in_the_documents():
    late = Failure(3, "the lab began this line 6.0 ms late", "lab-late")
    outcomes = [r if (r.exercise, r.family) != ("time-wait", 4) else ran("time-wait", 4, first_try=late)
                for r in all_passing()]
    results = evaluate(outcomes)
    claim = next(c for c in claims() if c.id == "001-tw-2msl-2min")
    row = next(line for line in markdown(results, "en", "6.18.44").splitlines() if claim.evidence[0].where in line)
    assert row.endswith("IPv4 pass (made again: the first try's failure was no verdict on the kernel), IPv6 pass")
    entry = next(e for e in as_json(results, "6.18.44") if e["id"] == claim.id)
    assert entry["evidence"][0]["made_again"] == ["ipv4"] and entry["results"]["ipv4"] == "pass"


def test_a_claim_result_without_runs_is_not_a_pass():
    claim = next(c for c in claims() if c.id == "000-fin-consumes")
    nothing = tuple({} for _ in claim.evidence)
    assert ClaimResult(claim, nothing, tuple(frozenset() for _ in claim.evidence)).passed is False
    assert isinstance(claim, Claim)


def test_each_exercises_declared_length_is_its_scripts_timeline():
    """`tcplab list` reads the runtime from catalogue.toml instead of parsing every script: it must not drift."""
    drifted = [f"[{exercise.name}] length = {round(exercise.runnable().length, 4)}" for exercise in exercises()
               if not exercise.experiment and abs(exercise.length - exercise.runnable().length) > 1e-4]
    assert drifted == [], "catalogue.toml should say: " + "; ".join(drifted)


def test_runs_from_several_kernels_make_one_course_with_a_column_and_the_differing_line_per_release():
    """tcplab claims --from A.json --from B.json: the runs name their kernel; the course shows each release."""
    import dataclasses

    from lab.views.results import as_dict, from_dict

    here = all_passing()
    older = [dataclasses.replace(r, kernel="6.12.118") if r.exercise != "tw-reuse" else
             dataclasses.replace(r, kernel="6.12.118", failure=Failure(13, "sysctl 'net.ipv4.tcp_tw_reuse_delay' "
                                                                             "does not exist on this kernel"))
             for r in here]
    older = [from_dict(as_dict(run)) for run in older]  # through the JSON, as --from reads them
    groups = course.by_release([*here, *older])
    assert set(groups) == {"6.12.118", *{r.kernel or __import__("platform").release() for r in here}}
    others = {"6.12.118": evaluate(groups["6.12.118"])}
    results = evaluate(here)
    english = markdown(results, "en", "6.18.44", others)
    assert "| IPv4 | IPv6 | 6.12.118 |" in english
    reuse = next(r for r in others["6.12.118"] if r.claim.id == "001-tw-reuse")
    assert not reuse.passed and "the run failed at line 13: sysctl 'net.ipv4.tcp_tw_reuse_delay'" in reuse.differs
    assert f"- Linux 6.12.118: `{reuse.differs}`" in english
    entry = next(e for e in as_json(results, "6.18.44", others) if e["id"] == "001-tw-reuse")
    assert entry["releases"]["6.12.118"]["result"] == "fail" and "line 13" in entry["releases"]["6.12.118"]["differs"]
    unchanged = next(e for e in as_json(results, "6.18.44", others) if e["id"] == "000-fin-consumes")
    assert unchanged["releases"]["6.12.118"] == {"result": "pass", "differs": ""}
    late = [dataclasses.replace(r, failure=Failure(1, "the lab began this line late", LAB_LATE))
            if r.exercise == "close-active" else r for r in older]
    judged = {r.claim.id: r for r in evaluate(late)}["000-fin-consumes"]
    assert course.release_word(judged, "en") == "not judged" and judged.differs.startswith("not judged: the lab was late")


def _on_release(release: str, exercise: str, failure: Failure) -> dict[str, list]:
    """The course's runs on ``release`` with ``exercise`` failing there as given, every other run passing."""
    import dataclasses

    return {release: evaluate([dataclasses.replace(r, kernel=release, failure=failure if r.exercise == exercise
                                                   else None) for r in all_passing()])}


def test_a_known_change_explains_a_release_older_than_it_failing_at_its_line():
    """6.1's SYN-ACK on a TIME_WAIT takeover is not old snd_nxt + 65537: the course names the 6.10 fix."""
    from lab.course.releases import changes

    line = labels(str(course.find("time-wait-new-syn").script))["new-syn-accepted"]
    others = _on_release("6.1.0-57-amd64", "time-wait-new-syn", Failure(line, "the kernel's segment differs"))
    english = markdown(evaluate(all_passing()), "en", "6.18.44", others)
    assert "— changed in Linux 6.10: d2fd6cf39a14" in english and "tcp_v4_fill_cb()" in english
    chinese = markdown(evaluate(all_passing()), "zh", "6.18.44", others)
    assert "—— Linux 6.10 起改变：d2fd6cf39a14" in chinese
    entry = next(e for e in as_json(evaluate(all_passing()), "6.18.44", others) if e["id"] == "000-tw-old-duplicates")
    assert entry["releases"]["6.1.0-57-amd64"]["explained_by"]["since"] == "6.10"
    assert {change.exercise for change in changes()} >= {"time-wait-new-syn", "tw-reuse", "syncookies"}


@pytest.mark.parametrize("release, line_label, message", [
    ("6.12.118+deb12-amd64", "new-syn-accepted", "the kernel's segment differs"),  # 6.12 has the fix
    ("6.1.0-57-amd64", "accept", "accept() returned -1 EAGAIN"),  # another line: not what the change explains
    ("not-a-release", "new-syn-accepted", "the kernel's segment differs"),
])
def test_no_explanation_for_a_release_with_the_change_or_another_failure(release, line_label, message):
    line = labels(str(course.find("time-wait-new-syn").script))[line_label]
    others = _on_release(release, "time-wait-new-syn", Failure(line, message))
    english = markdown(evaluate(all_passing()), "en", "6.18.44", others)
    assert "changed in Linux" not in english
    entry = next(e for e in as_json(evaluate(all_passing()), "6.18.44", others) if e["id"] == "000-tw-old-duplicates")
    assert entry["releases"][release]["result"] == "fail" and "explained_by" not in entry["releases"][release]


def test_a_change_named_by_a_word_of_its_failure_explains_only_that_failure():
    from lab.course.releases import explain

    assert explain("6.12.118", "tw-reuse", 13, "sysctl 'net.ipv4.tcp_tw_reuse_delay' does not exist").since == (6, 13)
    assert explain("6.12.118", "tw-reuse", 13, "sysctl 'net.ipv4.tcp_tw_reuse' does not exist") is None
    assert explain("6.13.0", "tw-reuse", 13, "sysctl 'net.ipv4.tcp_tw_reuse_delay' does not exist") is None


@pytest.mark.parametrize("row, message", [
    ('["tw-reuse"]\nsince = "6.13"\nchange = "c"\nwhy_en = "e"\nwhy_zh = "z"\n', "either a #label"),
    ('["tw-reuse#nope"]\nsince = "6.13"\nchange = "c"\nwhy_en = "e"\nwhy_zh = "z"\n', "carries #nope"),
    ('["tw-reuse#reused"]\nsince = "soon"\nchange = "c"\nwhy_en = "e"\nwhy_zh = "z"\n', "is not a release"),
    ('["tw-reuse#reused"]\nsince = "6.13"\nwhy_en = "e"\nwhy_zh = "z"\n', "missing: ['change']"),
])
def test_the_release_changes_loader_refuses_a_bad_row(tmp_path, monkeypatch, row, message):
    from lab.course import releases

    path = tmp_path / "release_changes.toml"
    path.write_text(row)
    monkeypatch.setattr(releases, "CHANGES_FILE", path)
    releases.changes.cache_clear()
    try:
        with pytest.raises(BadInput, match=re.escape(message)):
            releases.changes()
    finally:
        releases.changes.cache_clear()
