"""``tcplab verify``: check recorded captures against a script, offline."""

from __future__ import annotations

import os

import click

from lab.errors import BadInput

from lab.cli.output import finish, option_line_flags, require_folder, show_verdict


def _script_for(against: str):
    """The script to check against: a file, or an exercise's script."""
    from lab.course.catalogue import find
    from lab.script.parser import parse_file

    if os.path.exists(against):
        return parse_file(against)
    exercise = find(against)
    if exercise.experiment:
        raise BadInput(f"{against}: an experiment has no script trace to verify against; "
                       "name a script exercise (tcplab list)")
    return exercise.runnable()


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="FILE.pcap[ng]...")
@click.option("--against", required=True, metavar="NAME|SCRIPT", help="The exercise or script the capture must match.")
@option_line_flags
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (and nothing else) for CI.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the results as JUnit XML here.")
def verify(captures, against, tolerance_usecs, tolerance_percent, as_json, junit_path):
    """Check captures against an exercise or script: no privileges, no namespaces needed.

    Segments are matched by the same matcher `tcplab run` uses, the lab's
    own segments included; a capture tcplab wrote carries its run's timeline,
    so timing is judged as it was live. Lines about the
    endpoints' insides (syscalls, states) cannot be seen in a capture and are
    counted as not checked. Exit 0 when every capture matches, 1 on a mismatch.
    """
    from lab.capture.check import check_capture
    from lab.capture.pcapfile import read_segments, read_timeline
    from lab.script.settings import Settings

    require_folder("--junit", junit_path)
    script = _script_for(against)
    settings = Settings(tolerance_usecs, tolerance_percent)
    loaded = [(path, read_segments(path)) for path in captures]  # every file readable before any verdict
    outcomes = [check_capture(script, segments, path, settings, read_timeline(path))
                for path, segments in loaded]
    for (path, _), outcome in zip(loaded, outcomes, strict=True) if not as_json else ():
        show_verdict(outcome, f"{path} against {against} (IPv{outcome.family})")
    finish(outcomes, as_json, junit_path, "tcplab.verify", captures=[path for path, _ in loaded])
