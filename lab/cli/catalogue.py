"""``tcplab list`` and ``tcplab explain``: the exercise catalogue."""

from __future__ import annotations

import json
import sys

import click


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
def list_exercises(as_json: bool) -> None:
    """The exercises: name, mode, runtime, title, the claim tested and its source article."""
    from lab.catalogue import exercises

    if as_json:
        click.echo(json.dumps([exercise.as_dict() for exercise in exercises()], indent=2, ensure_ascii=False))
        return
    for exercise in exercises():
        click.echo(f"{exercise.name:<28} {exercise.mode:<8} {exercise.runtime:5.2f} s  {exercise.title}")
        click.echo(f"{'':<28} claim: {exercise.claim}  [{exercise.source}]")


@click.command()
@click.argument("name")
@click.option("--run", "measure", is_flag=True,
              help="Run the exercise now (IPv4) and draw the measured run: real times, the states the kernel "
                   "went through, syscalls; needs the lab's privileges.")
def explain(name: str, measure: bool) -> None:
    """The claim, what happens segment by segment and why, and the script that checks it."""
    from lab.catalogue import find

    exercise = find(name)
    click.echo(f"{exercise.name}: {exercise.title}  ({exercise.mode} mode)")
    click.echo(f"claim ({exercise.source}): {exercise.claim}")
    click.echo(f"verdict on Linux: {exercise.verdict}")
    if exercise.explanation:
        click.echo(exercise.explanation.rstrip())
    if measure:
        _measured_ladder(exercise)
    else:
        _recorded_ladder(exercise)
    kind = "experiment" if exercise.experiment else "script"
    click.echo(f"\nthe {kind} (run it: tcplab run {exercise.name}):\n")
    click.echo(exercise.script.read_text().rstrip())


def _recorded_ladder(exercise) -> None:
    """The exercise's fixture as a ladder, with the states its script asserts (no privileges needed)."""
    from lab.capture.check import asserted_states, check_capture
    from lab.capture.fixtures import CHECKOUT_CAPTURES
    from lab.capture.pcapfile import read_segments
    from lab.engine.settings import Settings
    from lab.ladder import text_ladder, use_color

    fixture = CHECKOUT_CAPTURES / f"{exercise.name}.pcapng"
    if exercise.experiment or not fixture.exists():
        return
    script = exercise.runnable()
    result = check_capture(script, read_segments(str(fixture)), str(fixture), Settings())
    asserted_states(script, result.steps)
    click.echo(f"\nsegment by segment (captures/{fixture.name}: the fixture's deterministic times, not measured; "
               "states as its state lines assert them; `tcplab explain NAME --run` measures a run):\n")
    click.echo(text_ladder(result.steps, result.left, result.right, use_color(sys.stdout)))


def _measured_ladder(exercise) -> None:
    """A run made now: measured times, the states the kernel went through and when, both state diagrams."""
    from lab import statediagram
    from lab.engine.batch import Outcome, run_any
    from lab.engine.settings import Settings
    from lab.ladder import Extras, text_ladder, use_color
    from lab.privileges import ensure_lab_privileges

    ensure_lab_privileges()
    outcome = Outcome.of(run_any(exercise.runnable(), 4, Settings()))
    color = use_color(sys.stdout)
    verdict = "every line matched" if outcome.passed else "FAILED: " + outcome.report.splitlines()[0]
    click.echo(f"\nsegment by segment, measured now (IPv4, {verdict}):\n")
    click.echo(text_ladder(list(outcome.steps), outcome.left, outcome.right, color, Extras.of(outcome)))
    for endpoint in (outcome.left, outcome.right):
        click.echo("\n" + statediagram.text(outcome.state_changes, endpoint, color))


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="docs/claims.md",
              show_default=True, help="Where to write the Markdown.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Runs at once.")
def claims(output: str, jobs: int) -> None:
    """Run every exercise (IPv4 and IPv6) and write docs/claims.md: each claim, its source, the verdict."""
    import platform
    from pathlib import Path

    from lab.catalogue import exercises
    from lab.engine.batch import run_many
    from lab.engine.settings import Settings
    from lab.privileges import ensure_lab_privileges

    ensure_lab_privileges()
    names = [e.name for e in exercises() for _ in (4, 6)]
    work = [(e.runnable(), family, Settings()) for e in exercises() for family in (4, 6)]
    passed: dict[str, list[str]] = {}
    for name, outcome in zip(names, run_many(work, jobs), strict=True):
        passed.setdefault(name, []).append(f"IPv{outcome.family} {'pass' if outcome.passed else 'FAIL'}")
    release = platform.release()
    lines = [
        "# Claims of the teaching material, checked against the kernel",
        "",
        f"Generated by `tcplab claims` on Linux {release}. Each claim comes from an article in",
        "`shared/seeds/`; its exercise runs against the real kernel (`tcplab run NAME`,",
        "`tcplab explain NAME`). The verdict says whether Linux confirms the claim or what it does instead.",
        "",
        f"| exercise | claim | source | verdict on Linux | run on {release} |",
        "|---|---|---|---|---|",
    ]
    for exercise in exercises():
        cells = [f"`{exercise.name}`", exercise.claim, exercise.source, exercise.verdict,
                 ", ".join(passed.get(exercise.name, []))]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    failures = sum(result.endswith("FAIL") for results in passed.values() for result in results)
    click.echo(f"wrote {output}: {len(exercises())} claims, {failures} failing run(s)")
