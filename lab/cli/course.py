"""``tcplab list``, ``tcplab explain`` and ``tcplab claims``: the catalogue as a course."""

from __future__ import annotations

import json
import sys
import textwrap

import click

from lab.views.i18n import say

from lab.cli.output import jobs_option, language_option, made_again_count


def _claim_lines(claim, language: str, indent: str = "") -> list[str]:
    """The article's sentence (Chinese) or its paraphrase (English), with the verdict and finding."""
    said = claim.quote if language == "zh" else claim.claim_en
    lines = [indent + say("claim line", language, source=claim.source, said=said)]
    if language == "en":
        lines.append(f"{indent}  \u201c{claim.quote}\u201d")
    lines.append(indent + say("verdict line", language, word=say(claim.verdict, language),
                              finding=claim.finding(language)))
    from lab.course.claims import reference_lines

    lines += [indent + line for line in reference_lines(claim, language)]
    return lines


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@language_option
def list_exercises(as_json: bool, language: str) -> None:
    """The exercises: name, mode, runtime, title, the claim tested, its source article and the verdict."""
    from lab.course.catalogue import exercises
    from lab.course.claims import listing, main_claim

    if as_json:
        click.echo(json.dumps([listing(exercise) for exercise in exercises()], indent=2, ensure_ascii=False))
        return
    for exercise in exercises():
        claim = main_claim(exercise)
        said = claim.quote if language == "zh" else claim.claim_en
        click.echo(f"{exercise.name:<28} {exercise.mode:<8} {exercise.runtime:5.2f} s  {exercise.title_in(language)}")
        click.echo(f"{'':<28} {say('claim', language)}: {said}  [{claim.source}]")
        click.echo(f"{'':<28} {say('verdict', language)}: {say(claim.verdict, language)}")


@click.command()
@click.argument("name")
@click.option("--run", "measure", is_flag=True,
              help="Run the exercise now (IPv4) and draw the measured run: real times, the states the kernel "
                   "went through, syscalls; needs the lab's privileges.")
@language_option
def explain(name: str, measure: bool, language: str) -> None:
    """The claim, the verdict, what happens segment by segment and why, and the script that checks it."""
    from lab.course.catalogue import find
    from lab.course.claims import claims, main_claim

    exercise = find(name)
    click.echo(f"{exercise.name}: {exercise.title_in(language)}")
    click.echo(say(f"mode {exercise.mode}", language))
    click.echo("\n".join(_claim_lines(main_claim(exercise), language)))
    if exercise.explanation_in(language):
        click.echo(exercise.explanation_in(language).rstrip())
    others = [claim for claim in claims() if exercise.name in claim.exercises and claim.id != exercise.claim_id]
    if others:
        click.echo(f"\n{say('also tests', language)}:")
        for claim in others:
            click.echo(f"  {claim.id}: {claim.short(language)} ({say(claim.verdict, language)})")
    if measure:
        _measured_ladder(exercise, language)
    else:
        _recorded_ladder(exercise, language)
    kind = say("experiment" if exercise.experiment else "script", language)
    click.echo("\n" + say("the script", language, kind=kind, name=exercise.name) + "\n")
    click.echo(exercise.script.read_text().rstrip())


def _recorded_ladder(exercise, language: str) -> None:
    """The exercise's fixture as a ladder, with the states its script asserts (no privileges needed)."""
    from lab.capture.check import asserted_states, check_capture
    from lab.capture.fixtures import CHECKOUT_CAPTURES
    from lab.capture.pcapfile import read_segments
    from lab.script.settings import Settings
    from lab.views.ladder import text_ladder, use_color

    fixture = CHECKOUT_CAPTURES / f"{exercise.name}.pcapng"
    if exercise.experiment or not fixture.exists():
        return
    script = exercise.runnable()
    result = check_capture(script, read_segments(str(fixture)), str(fixture), Settings())
    asserted_states(script, result.steps)
    click.echo("\n" + say("segment by segment", language, fixture=f"captures/{fixture.name}") + "\n")
    click.echo(text_ladder(result.steps, result.left, result.right, use_color(sys.stdout)))


def _measured_ladder(exercise, language: str) -> None:
    """A run made now: measured times, the states the kernel went through and when, both state diagrams."""
    from lab.views import statediagram
    from lab.live.batch import run_any
    from lab.views.report import render_failure
    from lab.script.settings import Settings
    from lab.views.ladder import Extras, text_ladder, use_color
    from lab.privileges import ensure_lab_privileges

    ensure_lab_privileges()
    outcome = run_any(exercise.runnable(), 4, Settings())
    color = use_color(sys.stdout)
    verdict = say("every line matched", language) if outcome.passed else "FAIL: " + render_failure(outcome).splitlines()[0]
    click.echo("\n" + say("segment by segment, measured", language, verdict=verdict) + "\n")
    extras = Extras.of(outcome, language)
    click.echo(text_ladder(list(outcome.steps), outcome.left, outcome.right, color, extras))
    for endpoint in (outcome.left, outcome.right):
        click.echo("\n" + statediagram.text(outcome.state_changes, endpoint, color))


@click.command()
@click.option("--docs", "folder", type=click.Path(file_okay=False, writable=True), default="docs", show_default=True,
              help="Where to write claims.md, claims.zh.md and claims.json.")
@click.option("--from", "recorded", type=click.Path(dir_okay=False), metavar="RESULTS.json", multiple=True,
              help="Judge the claims from the runs this file holds (`tcplab run --all --json > RESULTS.json`) "
                   "instead of running them. Files from several kernel releases (each run's JSON names its "
                   "kernel) make one course: a column per release, and the line where each one differs.")
@click.option("--slow", is_flag=True, envvar="TCPLAB_SLOW",
              help="A slow machine: judge content in full and timing only to 100 ms (as `run --slow`).")
@jobs_option
@language_option
def claims(folder: str, recorded: tuple[str, ...], slow: bool, jobs: int, language: str) -> None:
    """Run the exercises behind every claim (IPv4 and IPv6); write the course's claims in English, Chinese and JSON.

    Exit 1 when any line a finding rests on did not pass.
    """
    import platform
    from pathlib import Path

    from lab.course.catalogue import find
    from lab.course.claims import (as_json, by_release, check_evidence, claims as course_claims, evaluate,
                                   exercises_involved, markdown)
    from lab.live.batch import run_many
    from lab.views.report import made_again, render_failure
    from lab.views.results import read_json
    from lab.script.settings import Settings
    from lab.errors import EXIT_MISMATCH
    from lab.privileges import ensure_lab_privileges

    from lab.cli.output import require_folder

    require_folder("--docs", str(Path(folder) / "claims.md"))
    for claim in course_claims():
        check_evidence(claim)
    if recorded:
        outcomes = [outcome for path in recorded for outcome in read_json(path)]
    else:
        ensure_lab_privileges()
        work = [(find(name).runnable(), family, Settings(slow=slow)) for name in exercises_involved()
                for family in (4, 6)]
        outcomes = list(run_many(work, jobs, again_uncrowded=True))
    for outcome in outcomes:
        if not outcome.passed:
            click.echo(render_failure(outcome), err=True)
        if outcome.first_try is not None:
            click.echo(f"{outcome.case} (IPv{outcome.family}): {made_again(outcome.first_try)}")
    groups = by_release(outcomes)
    release = platform.release() if platform.release() in groups else next(iter(groups))  # this kernel's leads
    outcomes = groups.pop(release)
    results = evaluate(outcomes)
    others = {name: evaluate(runs) for name, runs in groups.items()}
    paths = [Path(folder) / "claims.md", Path(folder) / "claims.zh.md", Path(folder) / "claims.json"]
    paths[0].write_text(markdown(results, "en", release, others), encoding="utf-8")
    paths[1].write_text(markdown(results, "zh", release, others), encoding="utf-8")
    paths[2].write_text(json.dumps(as_json(results, release, others), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    failing = [result for result in results if not result.passed]
    for result in failing:
        for item, passed in zip(result.claim.evidence, result.lines, strict=True):
            for family in (4, 6):
                if not passed.get(family, False):
                    message = say("claims failed", language, claim=result.claim.id, ref=item.ref,
                                  where=item.where, family=family)
                    click.echo(textwrap.shorten(message, 160), err=True)
    click.echo(say("claims written", language, paths=", ".join(map(str, paths)), total=len(results),
                   failing=len(failing)) + made_again_count(outcomes, language))
    if failing:
        sys.exit(EXIT_MISMATCH)
