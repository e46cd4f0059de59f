"""``tcplab list`` and ``tcplab explain``: the exercise catalogue."""

from __future__ import annotations

import json

import click


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
def list_exercises(as_json: bool) -> None:
    """The exercises: name, mode, title, the claim tested and its source article."""
    from lab.catalogue import exercises

    if as_json:
        click.echo(json.dumps([exercise.as_dict() for exercise in exercises()], indent=2, ensure_ascii=False))
        return
    for exercise in exercises():
        click.echo(f"{exercise.name:<24} {exercise.mode:<8} {exercise.title}")
        click.echo(f"{'':<24} claim: {exercise.claim}  [{exercise.source}]")


@click.command()
@click.argument("name")
def explain(name: str) -> None:
    """The claim, what happens segment by segment and why, and the script that checks it."""
    from lab.catalogue import find

    exercise = find(name)
    click.echo(f"{exercise.name}: {exercise.title}  ({exercise.mode} mode)")
    click.echo(f"claim ({exercise.source}): {exercise.claim}")
    click.echo(f"verdict on Linux: {exercise.verdict}")
    if exercise.explanation:
        click.echo(exercise.explanation.rstrip())
    click.echo("\nthe script (run it: tcplab run " + exercise.name + "):\n")
    click.echo(exercise.script.read_text().rstrip())
