"""``tcplab selftests DIR``: the kernel's packetdrill selftests, as ksft_runner.sh runs them.

Output as a person reads it (one line per script and family), as KTAP (what
the kernel's runner prints: ``TAP version 13``, ``1..N``, ``ok``/``not ok``,
``# SKIP`` with the reason, a totals line), as one JSON array, or as JUnit XML.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET

import click

from lab.views.report import made_again
from lab.errors import EXIT_MISMATCH
from lab.tcp.families import FAMILIES
from lab.privileges import ensure_lab_privileges

from lab.cli.output import option_line_flags, require_folder

FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}
SLOW_TOLERANCE_USECS = 14000


def ktap_line(number: int, result, slow: bool = False) -> str:
    """One KTAP result line, as ksft_runner.sh's ktap helpers print it (on a slow machine a failure is
    an expected one, XFAIL, as there)."""
    description = f"{result.script} {FAMILY_NAMES[result.family]}"
    if result.result == "skip":
        return f"ok {number} {description} # SKIP {result.reason}"
    if result.result == "fail" and slow:
        return f"ok {number} {description} # XFAIL"
    return f"{'ok' if result.result == 'pass' else 'not ok'} {number} {description}"


def result_lines(number: int, result, ktap: bool, slow: bool = False) -> list[str]:
    """What one finished (script, family) prints: in KTAP its result line after ``# `` diagnostics (a
    failure's report), else one line a person reads; either way a line when it was made again."""
    description = f"{result.script} {FAMILY_NAMES[result.family]}"
    again = [f"{description}: {made_again(result.first_try)}"] if result.first_try is not None else []
    if not ktap:
        return [f"{result.result.upper():4} {description}" + (f"  {result.reason}" if result.reason else ""),
                *(f"     {line}" for line in again)]
    failed = (result.report or result.reason).splitlines() if result.result == "fail" else []
    return [*(f"# {line}" for line in failed + again), ktap_line(number, result, slow)]


def totals_line(results: list, slow: bool = False) -> str:
    counts = {name: sum(result.result == name for result in results) for name in ("pass", "fail", "skip")}
    failed, expected = (0, counts["fail"]) if slow else (counts["fail"], 0)
    return (f"# Totals: pass:{counts['pass']} fail:{failed} xfail:{expected} xpass:0 skip:{counts['skip']} "
            "error:0")


def write_junit(path: str, results: list) -> None:
    """One testcase per (script, family): a failure carries the mismatch report, a skip its reason."""
    failures = sum(result.result == "fail" for result in results)
    skipped = sum(result.result == "skip" for result in results)
    total_time = f"{sum(result.duration for result in results):.3f}"
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures), time=total_time)
    suite = ET.SubElement(root, "testsuite", name="tcplab.selftests", tests=str(len(results)),
                          failures=str(failures), skipped=str(skipped), errors="0", time=total_time)
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"tcplab.selftests.{result.script}",
                             name=FAMILY_NAMES[result.family], file=result.path, time=f"{result.duration:.3f}")
        if result.result == "fail":
            ET.SubElement(case, "failure", message=result.reason).text = result.report
        elif result.result == "skip":
            ET.SubElement(case, "skipped", message=result.reason)
        if result.first_try is not None:
            ET.SubElement(case, "system-out").text = made_again(result.first_try)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False))
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs at once, each in its own process and topology.")
@click.option("--ip-version", "ip_version", type=click.Choice(sorted(FAMILIES)), default="both", show_default=True,
              help="Families to run (a script's --ip_version line restricts it further).")
@click.option("--allow-shell", is_flag=True, help="Let backtick lines run shell (/bin/sh in the kernel namespace).")
@option_line_flags
@click.option("--ktap", is_flag=True, help="Print KTAP, as the kernel's ksft_runner.sh does.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (script, family, result, reason).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the results as JUnit XML here.")
def selftests(folder, jobs, ip_version, allow_shell, tolerance_usecs, tolerance_percent, ktap, as_json, junit_path):
    """Run every .pkt in DIR as the kernel's ksft_runner.sh runs packetdrill; exit 1 when any failed.

    With KSFT_MACHINE_SLOW set, as in ksft_runner.sh, the tolerance floor is
    14000 us unless --tolerance_usecs says otherwise, and failures are XFAIL.
    Both families unless a script's --ip_version line names one; IPv6 with MTU
    1520; the runner's -D defines (Fast Open cookies, control-message names)
    for the lab's own addresses. A script using something tcplab does not
    support is a SKIP naming the construct and its file:line.
    """
    from lab.live.batch import run_many
    from lab.script.settings import Settings
    from lab.live.ksft import collect, plan, run_selftest

    require_folder("--junit", junit_path)
    pairs = plan(collect(folder), FAMILIES[ip_version])
    ensure_lab_privileges()
    # ksft_runner.sh on a machine marked slow: a 14 ms tolerance, and failures are expected ones.
    slow = bool(os.environ.get("KSFT_MACHINE_SLOW"))
    if slow and tolerance_usecs is None:
        tolerance_usecs = SLOW_TOLERANCE_USECS
    settings = Settings(tolerance_usecs=tolerance_usecs, tolerance_percent=tolerance_percent, allow_shell=allow_shell)
    if ktap and not as_json:
        click.echo("TAP version 13")
        click.echo(f"1..{len(pairs)}")
    results = []
    for number, result in enumerate(run_many([(selftest, family, settings) for selftest, family in pairs], jobs,
                                             work=run_selftest, finish=lambda result: result, again_uncrowded=True),
                                    start=1):
        results.append(result)
        if as_json:
            continue
        click.echo("\n".join(result_lines(number, result, ktap, slow)))
        sys.stdout.flush()
    if junit_path:
        write_junit(junit_path, results)
    if as_json:
        click.echo(json.dumps([result.as_dict() for result in results], indent=2))
    elif ktap:
        click.echo(totals_line(results, slow))
    else:
        click.echo(totals_line(results, slow)[2:])
    if not slow and any(result.result == "fail" for result in results):
        sys.exit(EXIT_MISMATCH)
