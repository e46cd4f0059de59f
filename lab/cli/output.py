"""What ``run`` and ``verify`` print alike: verdicts, then JUnit, JSON or the summary, and the exit code."""

from __future__ import annotations

import os
import sys

import click

from lab.errors import EXIT_MISMATCH, BadInput


def require_folder(option: str, path: str | None) -> None:
    """Refuse an output path whose folder does not exist, before any work is done."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"{option} {path}: the folder {folder} does not exist; create it or choose another path")


def show_verdict(outcome, label: str) -> None:
    """PASS and its notes, or FAIL and the mismatch report."""
    if outcome.passed:
        click.echo(f"PASS {label}")
        for note in outcome.notes:
            click.echo(f"  note: {note}")
    else:
        click.echo(f"FAIL {label}")
        click.echo(outcome.report)
        for note in outcome.notes:
            click.echo(f"  note: {note}")


def finish(outcomes: list, as_json: bool, junit_path: str | None, suite: str) -> None:
    """Write what CI asked for; exit 1 when any outcome failed."""
    from lab.results import to_json, write_junit

    failed = sum(not outcome.passed for outcome in outcomes)
    if junit_path:
        write_junit(junit_path, outcomes, suite)
    if as_json:
        click.echo(to_json(outcomes))
    else:
        click.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    if failed:
        sys.exit(EXIT_MISMATCH)
