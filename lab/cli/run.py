"""``tcplab run``: run packetdrill-dialect scripts against the real kernel."""

from __future__ import annotations

import dataclasses
import os
import sys

import click

from lab import ladder as ladders
from lab.errors import BadInput
from lab.families import FAMILIES, families_for
from lab.ladder import text_ladder, use_color
from lab.privileges import ensure_lab_privileges

from .output import finish, language_option, require_folder, show_verdict
from .summary import display_name, summary_table


def _output_path(template: str | None, script_path: str, family: int, many: bool, suffix: str) -> str | None:
    """An output path for one run: the template itself, or with -<script>-ipv<N> when there are many."""
    if template is None or not many:
        return template
    stem, given = os.path.splitext(template)
    name = os.path.splitext(os.path.basename(script_path))[0]
    return f"{stem}-{name}-ipv{family}{given or suffix}"


def _resolve(names: tuple[str, ...], every: bool) -> list:
    """What to run for the arguments: a script file, else an exercise of the catalogue."""
    from lab.catalogue import exercises, find
    from lab.script.parser import parse_file

    if every:
        return [exercise.runnable() for exercise in exercises()]
    if not names:
        raise BadInput("run: name a script file or an exercise (see `tcplab list`), or pass --all")
    return [parse_file(name) if os.path.exists(name) else find(name).runnable() for name in names]


@click.command()
@click.argument("scripts", nargs=-1, metavar="NAME|FILE.pkt...")
@click.option("--all", "every", is_flag=True, help="Run every exercise of the catalogue.")
@click.option("--loopback", is_flag=True, help="Observe-mode scripts: both endpoints on 127.0.0.1 / ::1.")
@click.option("--ip-version", "ip_version", type=click.Choice(sorted(FAMILIES)), default="both", show_default=True,
              help="Address family to run each script in.")
@click.option("--tolerance_usecs", "--tolerance-usecs", "tolerance_usecs", type=click.IntRange(0),
              help="Timing tolerance floor in microseconds (default 4000, or the script's option line).")
@click.option("--tolerance_percent", "--tolerance-percent", "tolerance_percent", type=click.FloatRange(0),
              help="Timing tolerance as a percentage of the gap between events (default 12.5).")
@click.option("--allow-shell", is_flag=True, help="Let backtick lines run shell (/bin/sh in the kernel namespace).")
@click.option("--absolute", is_flag=True, help="Show absolute sequence numbers beside relative ones.")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Write the capture here (default: a temporary file, printed on failure).")
@click.option("-v", "--verbose", is_flag=True, help="Print every segment with the kernel's state after it.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs at once, each in its own process and topology.")
@click.option("--ladder/--no-ladder", default=None,
              help="Draw each run as a ladder diagram (default: when running one script).")
@click.option("--mermaid", is_flag=True, help="Print each run as a Mermaid sequenceDiagram.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the ladder as SVG (several runs: -<script>-ipv<N> is added to the name).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (and nothing else) for CI.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the results as JUnit XML here.")
@language_option
def run(scripts, every, loopback, ip_version, tolerance_usecs, tolerance_percent, allow_shell, absolute, pcap,
        verbose, jobs, ladder, mermaid, svg_path, as_json, junit_path, language):
    """Run exercises or scripts, a fresh topology per script and family; exit 0 when every line matched.

    Every file is parsed and checked before anything runs: a syntax error, or
    a shell line without --allow-shell, stops the run with exit code 2.
    """
    from lab.engine.batch import run_many
    from lab.engine.runner import Settings, preflight
    from lab.script.events import Script

    for option, path in (("--pcap", pcap), ("--svg", svg_path), ("--junit", junit_path)):
        require_folder(option, path)
    settings = Settings(tolerance_usecs, tolerance_percent, allow_shell, absolute, loopback=loopback)
    parsed = _resolve(scripts, every)
    for script in parsed:
        if isinstance(script, Script):
            preflight(script, settings)
    runs = [(script, families_for(getattr(script, "options", {}), script.path, ip_version)) for script in parsed]
    ensure_lab_privileges()
    many = sum(len(families) for _, families in runs) > 1
    work = []
    for script, families in runs:
        if not families and not as_json:
            click.echo(f"SKIP {script.path}: its --ip_version line excludes --ip-version {ip_version}")
        for family in families:
            job_settings = dataclasses.replace(settings, pcap=_output_path(pcap, script.path, family, many, ".pcapng"))
            work.append((script, family, job_settings))
    if ladder is None:
        ladder = len(parsed) == 1 and not every and not as_json
    outcomes = []
    for outcome in run_many(work, jobs):
        outcomes.append(outcome)
        if not as_json:
            _show(outcome, verbose, ladder, mermaid, svg_path, many)
    if many and not as_json:
        click.echo("\n" + "\n".join(summary_table(outcomes, language)) + "\n")
    finish(outcomes, as_json, junit_path, "tcplab.run", language)


def _show(outcome, verbose: bool, ladder: bool, mermaid: bool, svg_path: str | None, many: bool) -> None:
    """One run, as a person reads it: PASS/FAIL, the report, and the trace, ladder or diagrams asked for."""
    color = use_color(sys.stdout)
    steps = list(outcome.steps)
    if verbose:
        for step in steps:
            states = "  ".join(f"{name} {state:<11}" for name, state in step.states.items())
            where = f"line {step.line}" if step.line else "unmatched"
            click.echo(f"  {step.time:8.4f}  {step.text:<72} {states} ({where})")
    if ladder:
        click.echo(f"\n{display_name(outcome)}\n" + text_ladder(steps, outcome.left, outcome.right, color))
    if mermaid:
        click.echo(ladders.mermaid(steps, outcome.left, outcome.right))
    if svg_path:
        target = _output_path(svg_path, outcome.path, outcome.family, many, ".svg")
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(ladders.svg(steps, outcome.left, outcome.right, outcome.name))
    name = display_name(outcome)
    show_verdict(outcome, f"{name}  {outcome.duration * 1000:.0f} ms" if outcome.passed else name)
