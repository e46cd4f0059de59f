"""``tcplab run``: run packetdrill-dialect scripts against the real kernel."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys

import click

from lab.views import ladder as ladders
from lab.views.report import lateness_summary, render_failure
from lab.errors import BadInput
from lab.tcp.families import FAMILIES, families_for
from lab.views.ladder import text_ladder, use_color
from lab.privileges import ensure_lab_privileges

from lab.cli.output import keep_failure, finish, jobs_option, language_option, option_line_flags, require_folder, show_verdict
from lab.cli.summary import display_name, summary_table


def _output_path(template: str | None, script_path: str, family: int, many: bool, suffix: str) -> str | None:
    """An output path for one run: the template itself, or with -<script>-ipv<N> when there are many."""
    if template is None or not many:
        return template
    stem, given = os.path.splitext(template)
    name = os.path.splitext(os.path.basename(script_path))[0]
    return f"{stem}-{name}-ipv{family}{given or suffix}"


def _defines(pairs: tuple[str, ...]) -> dict[str, str]:
    """``-D NAME=VALUE`` flags, as packetdrill takes them."""
    defines = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise BadInput(f"-D {pair}: write -D NAME=VALUE")
        defines[name] = value
    return defines


def _resolve(names: tuple[str, ...], every: bool, defines: dict[str, str]) -> list:
    """What to run for the arguments: a script file, else an exercise of the catalogue."""
    from lab.script.parser import parse_file

    if not every and not names:
        raise BadInput("run: name a script file or an exercise (see `tcplab list`), or pass --all")
    if not every and all(os.path.exists(name) for name in names):
        return [parse_file(name, defines) for name in names]  # script files alone: no catalogue to read
    from lab.course.catalogue import exercises, find

    if every:
        return [exercise.runnable() for exercise in exercises()]
    return [parse_file(name, defines) if os.path.exists(name) else find(name).runnable() for name in names]


@click.command()
@click.argument("scripts", nargs=-1, metavar="NAME|FILE.pkt...")
@click.option("--all", "every", is_flag=True, help="Run every exercise of the catalogue.")
@click.option("--loopback", is_flag=True, help="Observe-mode scripts: both endpoints on 127.0.0.1 / ::1.")
@click.option("--ip-version", "ip_version", type=click.Choice(sorted(FAMILIES)), default="both", show_default=True,
              help="Address family to run each script in.")
@option_line_flags
@click.option("--allow-shell", is_flag=True, help="Let backtick lines run shell (/bin/sh in the kernel namespace).")
@click.option("--slow", is_flag=True, envvar="TCPLAB_SLOW",
              help="A slow machine (an emulated kernel, a loaded CI box): judge content in full and timing only "
                   "to 100 ms; each run notes the segments outside the script's own tolerance.")
@click.option("-D", "--define", "defines", multiple=True, metavar="NAME=VALUE",
              help="Read NAME in script files as VALUE (packetdrill's -D).")
@click.option("--absolute", is_flag=True, help="Show absolute sequence numbers beside relative ones.")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Write the capture here (default: a temporary file, printed on failure).")
@click.option("-v", "--verbose", is_flag=True, help="Print every segment with the kernel's state after it.")
@jobs_option
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Run each script N times; print each line's timing spread and the failures by kind (every try "
                   "as it ended: none is made again).")
@click.option("--ladder/--no-ladder", default=None,
              help="Draw each run as a ladder diagram (default: when running one script).")
@click.option("--mermaid", is_flag=True, help="Print each run as a Mermaid sequenceDiagram.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the ladder as SVG (several runs: -<script>-ipv<N> is added to the name).")
@click.option("--states", "state_diagrams", is_flag=True,
              help="Print each endpoint's path through the TCP state diagram (RFC 9293).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Write one self-contained HTML page that plays the run step by step (several runs: "
                   "-<script>-ipv<N> is added to the name).")
@click.option("--animated-svg", "animated_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the same animation as an animated SVG, for slides.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (and nothing else) for CI.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the results as JUnit XML here.")
@click.option("--failures", "failures_dir", type=click.Path(file_okay=False, writable=True),
              help="Keep each failing run's capture and HTML page in this folder, as NAME-ipvN.pcapng and "
                   "NAME-ipvN.html (CI artifacts; the folder is made if missing).")
@language_option
def run(scripts, every, loopback, ip_version, tolerance_usecs, tolerance_percent, allow_shell, slow, defines, absolute,
        pcap, verbose, jobs, repeat, ladder, mermaid, svg_path, state_diagrams, html_path, animated_path, as_json,
        junit_path, failures_dir, language):
    """Run exercises or scripts, a fresh topology per script and family; exit 0 when every line matched.

    Every file is parsed and checked before anything runs: a syntax error, or
    a shell line without --allow-shell, stops the run with exit code 2.
    """
    from lab.live.punctual import on_timeline_cpu
    from lab.live.tracepoints import prepare_in_background, runs_to_come

    # Both begun already where the console script started (lab/cli/__init__.py); here for other callers, whose
    # process gets its CPUs back when the command ends.
    click.get_current_context().with_resource(on_timeline_cpu())
    prepare_in_background()
    from lab.live.kept import built_ahead
    from lab.live.pool_choice import goes_to_a_pool
    from lab.live.preflight import preflight
    from lab.live.topologies import topology_for
    from lab.script.events import Script
    from lab.script.settings import Settings

    pictures = Pictures(svg_path, html_path, animated_path, state_diagrams)
    for option, path in (("--pcap", pcap), ("--svg", svg_path), ("--junit", junit_path), ("--html", html_path),
                         ("--animated-svg", animated_path)):
        require_folder(option, path)
    settings = Settings(tolerance_usecs, tolerance_percent, allow_shell, absolute, loopback=loopback, slow=slow)
    parsed = _resolve(scripts, every, _defines(defines))
    for script in parsed:
        if isinstance(script, Script):
            preflight(script, settings)
    runs = [(script, families_for(getattr(script, "options", {}), script.path, ip_version)) for script in parsed]
    ensure_lab_privileges()
    many = sum(len(families) for _, families in runs) > 1
    work = []
    if html_path and pcap is None:  # the page links the capture: keep it beside the page
        pcap = os.path.splitext(html_path)[0] + ".pcapng"
    for script, families in runs:
        if not families and not as_json:
            click.echo(f"SKIP {script.path}: its --ip_version line excludes --ip-version {ip_version}")
        for family in families:
            job_settings = dataclasses.replace(settings, pcap=_output_path(pcap, script.path, family, many, ".pcapng"))
            work.extend([(script, family, job_settings)] * repeat)
    if ladder is None:
        ladder = len(parsed) == 1 and not every and not as_json and repeat == 1
    runs_to_come(len(work))  # the trace instance goes once the last run here has read it (lab/live/tracepoints.py)
    first = work[0] if (work and len(scripts) == 1 and not every and isinstance(work[0][0], Script)
                        and not goes_to_a_pool(work, jobs)) else None
    outcomes = []
    # One script whose runs this process makes: its first run's topology is built while the engine imports
    # (lab/live/kept.py). Runs in worker processes build their own.
    with built_ahead(topology_for(first[0].observe, first[1], first[2].for_script(first[0]))) if first \
            else contextlib.nullcontext():
        from lab.live.batch import run_many

        for outcome in run_many(work, jobs, again_uncrowded=repeat == 1):
            outcomes.append(outcome)
            if failures_dir and not outcome.passed:
                keep_failure(outcome, failures_dir, language)
            if not as_json and repeat == 1:
                _show(outcome, verbose, ladder, mermaid, pictures, many, absolute, language)
    if repeat > 1 and not as_json:
        _show_spreads(outcomes, parsed, repeat)
    elif many and not as_json:
        click.echo("\n" + "\n".join(summary_table(outcomes, language)) + "\n")
    finish(outcomes, as_json, junit_path, "tcplab.run", language)


def _show_spreads(outcomes: list, parsed: list, repeat: int) -> None:
    """--repeat: per script and family, each line's timing spread; the failing runs' reports once each."""
    from lab.views.repeat import table

    texts = {script.path: {event.line: event.text for event in getattr(script, "events", ())} for script in parsed}
    for start in range(0, len(outcomes), repeat):
        group = outcomes[start:start + repeat]
        click.echo(table(group, texts.get(group[0].path, {})))
        for outcome in group:
            if not outcome.passed:
                click.echo(render_failure(outcome))


@dataclasses.dataclass(frozen=True)
class Pictures:
    """The drawings asked for besides the terminal ladder."""

    svg: str | None
    html: str | None
    animated_svg: str | None
    state_diagrams: bool

    def write(self, outcome, many: bool, language: str) -> None:
        if not (self.svg or self.html or self.animated_svg):
            return  # none asked for: nor the drawing modules, nor the catalogue, are loaded
        from lab.views import animation

        extras = ladders.Extras.of(outcome, language)
        exercise = _exercise_of(outcome)
        title = f"{exercise.name if exercise else os.path.basename(outcome.path)} (IPv{outcome.family})"
        drawings = ((self.svg, ".svg", lambda: ladders.svg(list(outcome.steps), outcome.left, outcome.right,
                                                            outcome.name, extras)),
                    (self.html, ".html", lambda: animation.html_page(outcome, animation.story_for(outcome, exercise, language))),
                    (self.animated_svg, ".svg", lambda: animation.animated_svg(outcome, title, language)))
        for template, suffix, draw in drawings:
            if template:
                target = _output_path(template, outcome.path, outcome.family, many, suffix)
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(draw())


def _exercise_of(outcome):
    """The catalogue's exercise a run is, if it is one (its claim and verdict go on the page)."""
    from lab.course.catalogue import exercises

    return next((exercise for exercise in exercises() if exercise.name == outcome.case), None)


def _show(outcome, verbose: bool, ladder: bool, mermaid: bool, pictures: Pictures, many: bool,
          absolute: bool, language: str) -> None:
    """One run, as a person reads it: PASS/FAIL, the report, and the trace, ladder or diagrams asked for."""
    color = use_color(sys.stdout)
    steps = list(outcome.steps)
    extras = ladders.Extras.of(outcome, language)
    if verbose:
        for step in steps:
            states = "  ".join(f"{name} {state:<11}" for name, state in step.states.items())
            where = f"line {step.line}" if step.line else "unmatched"
            late = f", {step.late_ms:+.3f} ms" if step.late_ms is not None else ""
            click.echo(f"  {step.time:8.4f}  {step.text(absolute):<72} {states} ({where}{late})")
        for action in outcome.actions:
            result = f" = {action.result}" if action.result else ""
            click.echo(f"  line {action.line:>4}  {action.what}{result} at {action.script_time:.3f} s: "
                       f"the lab was {action.late_ms:.3f} ms late")
        for change in outcome.state_changes:
            click.echo(f"  {change.time:8.4f}  state {change.endpoint} {change.old} -> {change.new} ({change.source})")
        for event in outcome.kernel_events:
            click.echo(f"  {event.time:8.4f}  kernel {event.endpoint}: {event.text}")
        click.echo(f"  {lateness_summary(outcome)}")
    if ladder:
        click.echo(f"\n{display_name(outcome)}\n" + text_ladder(steps, outcome.left, outcome.right, color, extras))
    if mermaid:
        click.echo(ladders.mermaid(steps, outcome.left, outcome.right, extras))
    if pictures.state_diagrams:
        from lab.views import statediagram

        for endpoint in (outcome.left, outcome.right):
            click.echo("\n" + statediagram.text(outcome.state_changes, endpoint, color))
    pictures.write(outcome, many, language)
    name = display_name(outcome)
    show_verdict(outcome, f"{name}  {outcome.duration * 1000:.0f} ms" if outcome.passed else name)
