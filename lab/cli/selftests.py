"""``tcplab selftests DIR``: the kernel's packetdrill selftests, as ksft_runner.sh runs them.

Output as a person reads it (one line per script and family), as KTAP, as one
JSON array, or as JUnit XML (lab/views/ktap.py and lab/views/results.py).
"""

from __future__ import annotations

import json
import os
import sys

import click

from lab.views.ktap import result_lines, selftest_case, totals_line
from lab.views.results import write_junit
from lab.errors import EXIT_MISMATCH
from lab.tcp.families import FAMILIES
from lab.privileges import ensure_lab_privileges

from lab.cli.output import keep_failure, option_line_flags, require_folder

SLOW_TOLERANCE_USECS = 14000


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False), required=False)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs at once, each in its own process and topology.")
@click.option("--ip-version", "ip_version", type=click.Choice(sorted(FAMILIES)), default="both", show_default=True,
              help="Families to run (a script's --ip_version line restricts it further).")
@click.option("--allow-shell", is_flag=True, help="Let backtick lines run shell (/bin/sh in the kernel namespace).")
@click.option("--slow", is_flag=True, envvar="TCPLAB_SLOW",
              help="A slow machine (an emulated kernel): content judged in full, timing only to 100 ms (as `run "
                   "--slow`); wider than KSFT_MACHINE_SLOW's 14 ms, and failures stay failures.")
@option_line_flags
@click.option("--ktap", is_flag=True, help="Print KTAP, as the kernel's ksft_runner.sh does.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (script, family, result, reason).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the results as JUnit XML here.")
@click.option("--failures", "failures_dir", type=click.Path(file_okay=False, writable=True),
              help="Keep each failing run's capture and HTML page in this folder (CI artifacts).")
@click.option("--from", "recorded", type=click.Path(dir_okay=False), multiple=True, metavar="RESULTS.json",
              help="Run nothing: print the matrix of these `selftests --json` files from several kernels (script x "
                   "family x release), the pairs that differ first.")
def selftests(folder, jobs, ip_version, allow_shell, slow, tolerance_usecs, tolerance_percent, ktap, as_json, junit_path,
              failures_dir, recorded):
    """Run every .pkt in DIR as the kernel's ksft_runner.sh runs packetdrill; exit 1 when any failed.

    With KSFT_MACHINE_SLOW set, as in ksft_runner.sh, the tolerance floor is
    14000 us unless --tolerance_usecs says otherwise, and failures are XFAIL.
    Both families unless a script's --ip_version line names one; IPv6 with MTU
    1520; the runner's -D defines (Fast Open cookies, control-message names)
    for the lab's own addresses. A script using something tcplab does not
    support is a SKIP naming the construct and its file:line.
    """
    if recorded:
        from lab.views import matrix

        click.echo(matrix.markdown(matrix.read(recorded)), nl=False)
        return
    if folder is None:
        raise click.UsageError("give DIR (the selftests' folder), or --from RESULTS.json to merge recorded runs")
    from lab.live.batch import run_many
    from lab.script.settings import Settings
    from lab.live.ksft import collect, plan, run_selftest

    require_folder("--junit", junit_path)
    pairs = plan(collect(folder), FAMILIES[ip_version])
    ensure_lab_privileges()
    # ksft_runner.sh on a machine marked slow: a 14 ms tolerance, and failures are expected ones.
    ksft_slow = bool(os.environ.get("KSFT_MACHINE_SLOW"))
    if ksft_slow and tolerance_usecs is None:
        tolerance_usecs = SLOW_TOLERANCE_USECS
    settings = Settings(tolerance_usecs=tolerance_usecs, tolerance_percent=tolerance_percent, allow_shell=allow_shell,
                        slow=slow)
    if ktap and not as_json:
        click.echo("TAP version 13")
        click.echo(f"1..{len(pairs)}")
    results = []
    for number, result in enumerate(run_many([(selftest, family, settings) for selftest, family in pairs], jobs,
                                             work=run_selftest, finish=lambda result: result, again_uncrowded=True),
                                    start=1):
        results.append(result)
        if failures_dir and result.run is not None:
            keep_failure(result.run, failures_dir, "en")
        if as_json:
            continue
        click.echo("\n".join(result_lines(number, result, ktap, ksft_slow)))
        sys.stdout.flush()
    if junit_path:
        write_junit(junit_path, "tcplab.selftests", [selftest_case(result) for result in results])
    if as_json:
        click.echo(json.dumps([result.as_dict() for result in results], indent=2))
    elif ktap:
        click.echo(totals_line(results, ksft_slow))
    else:
        click.echo(totals_line(results, ksft_slow)[2:])
    if not ksft_slow and any(result.result == "fail" for result in results):
        sys.exit(EXIT_MISMATCH)
