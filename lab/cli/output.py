"""What ``run`` and ``verify`` print alike: verdicts, then JUnit, JSON or the summary, and the exit code."""

from __future__ import annotations

import os
import sys
import unicodedata

import click

from lab.errors import EXIT_LAB_LATE, EXIT_MISMATCH, BadInput
from lab.views.i18n import LANGUAGES, default_language, say


def jobs_option(command):
    """``-j N``: runs at once, each in its own worker process; without it, from the CPUs and their load."""
    return click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None,
                        help="Runs at once, each in its own process and topology (default: five per CPU "
                             "that is not already busy).")(command)


def language_option(command):
    """``--lang zh|en``; without it, the language of LC_ALL or LANG (zh when it starts with zh)."""
    return click.option("--lang", "language", type=click.Choice(LANGUAGES), default=None, callback=_language,
                        help="Language of the text: zh or en (default: from LC_ALL / LANG).")(command)


def _language(ctx, param, value: str | None) -> str:
    return value or default_language()


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns (the first row is the heading), CJK-aware."""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def option_line_flags(command):
    """The flags that set what a script's option line sets (``--tolerance_usecs`` and its dashed spelling),
    made from the one option table (lab/script/settings.py OPTIONS); a flag wins over the script's line."""
    from lab.script.settings import OPTIONS

    for option in reversed([option for option in OPTIONS if option.flag_help]):
        kind = click.IntRange(0) if option.kind is int else click.FloatRange(0)
        command = click.option(f"--{option.name}", f"--{option.name.replace('_', '-')}", option.name, type=kind,
                               help=option.flag_help)(command)
    return command


def require_folder(option: str, path: str | None) -> None:
    """Refuse an output path whose folder does not exist, before any work is done."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"{option} {path}: the folder {folder} does not exist; create it or choose another path")


def show_verdict(outcome, label: str) -> None:
    """PASS, or FAIL and the mismatch report; then whether the run was made again, and its notes."""
    from lab.views.report import made_again, render_failure

    click.echo(f"{'PASS' if outcome.passed else 'FAIL'} {label}")
    if not outcome.passed:
        click.echo(render_failure(outcome))
    if outcome.first_try is not None:
        click.echo(f"  {made_again(outcome.first_try)}")
    for note in outcome.notes:
        click.echo(f"  note: {note}")


def made_again_count(outcomes: list, language: str) -> str:
    """For a summary line: "; N made again uncrowded: …", or nothing when no run was made again."""
    again = sum(outcome.first_try is not None for outcome in outcomes)
    return f"; {say('again uncrowded', language, count=again)}" if again else ""


def failure_kinds(outcomes: list) -> dict[str, int]:
    """How many failed runs of each kind (content, timing, lab-late)."""
    from lab.judge.trace import KINDS

    counts = dict.fromkeys(KINDS, 0)
    for outcome in outcomes:
        if outcome.failure is not None:
            counts[outcome.failure.kind] = counts.get(outcome.failure.kind, 0) + 1
    return counts


def exit_code(outcomes: list) -> int:
    """0 all passed; 1 any kernel mismatch; 4 only the lab's own lateness (inconclusive)."""
    kinds = failure_kinds(outcomes)
    if sum(count for kind, count in kinds.items() if kind != "lab-late"):
        return EXIT_MISMATCH
    return EXIT_LAB_LATE if kinds["lab-late"] else 0


def finish(outcomes: list, as_json: bool, junit_path: str | None, suite: str, language: str = "en",
           captures: list[str] | None = None) -> None:
    """Write what CI asked for; exit 1 on a kernel mismatch, 4 when only the lab was late. ``captures``: the
    files ``verify`` checked, one per outcome, which name its JUnit testcases."""
    failed = sum(not outcome.passed for outcome in outcomes)
    if junit_path:
        from lab.views.results import run_case, write_junit

        write_junit(junit_path, suite, [run_case(suite, outcome, capture)
                                        for outcome, capture in zip(outcomes, captures or [None] * len(outcomes))])
    if as_json:
        from lab.views.results import to_json

        click.echo(to_json(outcomes))
    else:
        kinds = ", ".join(f"{kind} {count}" for kind, count in failure_kinds(outcomes).items())
        click.echo(say("summary", language, passed=len(outcomes) - failed, failed=failed) + (f" ({kinds})" if failed else "")
                   + made_again_count(outcomes, language))
    code = exit_code(outcomes)
    if code:
        sys.exit(code)


def keep_failure(outcome, folder: str, language: str) -> None:
    """A failing run's capture and its HTML page (which links the capture) in ``folder``, for CI to keep:
    ``NAME-ipvN.pcapng`` and ``NAME-ipvN.html``."""
    import dataclasses
    import shutil

    from lab.course.catalogue import exercises
    from lab.views import animation

    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, f"{outcome.case}-ipv{outcome.family}")
    if outcome.pcap and os.path.exists(outcome.pcap):
        shutil.copyfile(outcome.pcap, stem + ".pcapng")
        outcome = dataclasses.replace(outcome, pcap=stem + ".pcapng")
    exercise = next((exercise for exercise in exercises() if exercise.name == outcome.case), None)
    with open(stem + ".html", "w", encoding="utf-8") as handle:
        handle.write(animation.html_page(outcome, animation.story_for(outcome, exercise, language)))
