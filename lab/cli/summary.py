"""The table a run ends with: each exercise, the claim it tests, the verdict, and its IPv4 / IPv6 result."""

from __future__ import annotations

import os

from lab.views.i18n import say

from lab.cli.output import table


def catalogue_exercise(outcome):
    """The catalogue exercise an outcome ran, or None for a script file of the user's (outside its folder:
    the catalogue is not even read)."""
    from lab.course.catalogue import FOLDER, exercises

    if os.path.dirname(os.path.realpath(outcome.path)) != os.path.realpath(FOLDER):
        return None
    for exercise in exercises():
        if exercise.name == outcome.case and os.path.realpath(outcome.path) == os.path.realpath(exercise.script):
            return exercise
    return None


def display_name(outcome) -> str:
    """How a person knows a run: the exercise's name, or the script file's path as given."""
    exercise = catalogue_exercise(outcome)
    return f"{exercise.name if exercise else outcome.path} (IPv{outcome.family})"


def summary_table(outcomes: list, language: str) -> list[str]:
    """One row per script: name, claim (short), verdict word, IPv4 and IPv6 results."""
    from lab.course.claims import main_claim

    rows: dict[str, list[str]] = {}
    for outcome in outcomes:
        exercise = catalogue_exercise(outcome)
        name = exercise.name if exercise else outcome.path
        if name not in rows:
            claim = main_claim(exercise) if exercise else None
            rows[name] = [name, claim.short(language) if claim else "-", say(claim.verdict, language) if claim
                          else "-", say("not run", language), say("not run", language)]
        rows[name][3 if outcome.family == 4 else 4] = say("pass" if outcome.passed else "fail", language)
    heading = [say("exercise", language), say("claim", language), say("verdict", language), "IPv4", "IPv6"]
    return table([heading, *rows.values()])
