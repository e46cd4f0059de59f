"""``tcplab capture``: regenerate the pcap fixtures, and compare two captures."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.errors import EXIT_MISMATCH, BadInput
from lab.tcp.families import FAMILIES

from lab.cli.output import jobs_option


@click.group()
def capture() -> None:
    """Pcap fixtures: regenerate them from the kernel, compare two captures."""


@capture.command()
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--folder", type=click.Path(file_okay=False), default="captures", show_default=True,
              help="Where the fixtures are (and go, without --check).")
@click.option("--ip-version", "ip_version", type=click.Choice(sorted(FAMILIES)), default="both",
              show_default=True, help="captures/NAME.pcapng is IPv4, captures/NAME-ipv6.pcapng IPv6.")
@click.option("--check", is_flag=True,
              help="Write nothing: compare each regenerated fixture with the one in --folder; exit 1 when "
                   "segments, script lines or sysctls differ (not for the kernel build or tcplab version alone).")
@jobs_option
def regen(names: tuple[str, ...], folder: str, ip_version: str, check: bool, jobs: int) -> None:
    """Re-record captures/<exercise>.pcapng for every exercise (or those named), deterministically.

    A fixture that differs only in its environment (kernel build, tcplab
    version) is left untouched. Experiments have no script trace and no
    fixture: they are left out, and naming one is an error.
    """
    from lab.capture.fixtures import regenerate
    from lab.course.catalogue import exercises, find
    from lab.live.checkup import TCP_SYSCTLS
    from lab.views.report import render_failure
    from lab.privileges import ensure_lab_privileges
    from netns import LoopbackTopology, SysctlError

    chosen = [find(name) for name in names] if names else [e for e in exercises() if not e.experiment]
    for exercise in chosen:
        if exercise.experiment:
            raise BadInput(f"{exercise.name}: an experiment has no script trace to record; "
                           "name a script exercise (tcplab list)")
    ensure_lab_privileges()
    defaults = {}
    with LoopbackTopology() as fresh:
        for key in TCP_SYSCTLS:
            try:
                defaults[key] = fresh.sysctl(key)
            except SysctlError:
                continue
    failed = 0
    for path, outcome, comparison in regenerate(chosen, FAMILIES[ip_version], Path(folder), defaults,
                                                jobs, check):
        again = _made_again(outcome)
        if comparison is None:
            failed += 1
            click.echo(f"FAIL {outcome.name}: not recorded{again}\n{render_failure(outcome)}")
            continue
        failed += check and comparison.changed
        click.echo(_regen_line(path, comparison, check) + again)
        if check and comparison.differences:
            click.echo("\n".join(f"  {line}" for line in comparison.differences))
    if failed:
        sys.exit(EXIT_MISMATCH)


def _regen_line(path: Path, comparison, check: bool) -> str:
    """What became of one fixture (with --check: how it compares), on one line."""
    from lab.capture.compare import CHANGED, ENVIRONMENT_ONLY, MISSING, SAME

    verdict = comparison.verdict
    if verdict == ENVIRONMENT_ONLY:
        return f"unchanged {path}: only the environment differs ({comparison.environment})"
    if check:
        return {SAME: f"same {path}", CHANGED: f"changed {path}:", MISSING: f"missing fixture {path}"}[verdict]
    return {SAME: f"unchanged {path}", CHANGED: f"wrote {path} (changed)", MISSING: f"wrote {path}"}[verdict]


def _made_again(outcome) -> str:
    """Say so when the run was made again, its first try no verdict on the kernel (the words every command uses)."""
    from lab.views.report import made_again

    return "" if outcome.first_try is None else f" ({made_again(outcome.first_try)})"


@capture.command()
@click.argument("first", type=click.Path(dir_okay=False))
@click.argument("second", type=click.Path(dir_okay=False))
def diff(first: str, second: str) -> None:
    """The segment-level differences between two captures (relative numbers); exit 1 when they differ."""
    from lab.capture.diff import diff_captures
    from lab.capture.pcapfile import read_segments

    lines = diff_captures(read_segments(first), read_segments(second), first, second)
    if not lines:
        click.echo("the captures agree segment by segment")
        return
    click.echo("\n".join(lines))
    sys.exit(EXIT_MISMATCH)
