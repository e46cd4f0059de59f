"""``tcplab doctor``: can the lab run here? Exit 0 if so, 3 with the fix if not; what is missing either way."""

from __future__ import annotations

import sys

import click

from lab.errors import EXIT_ENVIRONMENT


@click.command()
def doctor() -> None:
    """Privileges, kernel, container, a fresh namespace's TCP sysctls, offload state, and what is missing."""
    from lab.live.checkup import examine

    report = examine()
    click.echo(f"kernel      {report.kernel}")
    click.echo(f"python      {report.python}")
    click.echo(f"container   {report.container or 'none seen (a host or a VM)'}")
    for lack in report.lacks:
        click.echo(f"{'missing' if lack.fatal else 'degraded'}: {lack.what}")
        click.echo(f"  costs: {lack.costs}")
        click.echo(f"  grant: {lack.grant}")
    if report.problem:
        fix = report.lacks[0].grant if report.lacks and report.lacks[0].fatal else ""
        click.echo(f"tcplab: the lab cannot run here: {report.problem}" + (f"; {fix}" if fix else ""), err=True)
        sys.exit(EXIT_ENVIRONMENT)
    click.echo(f"privileges  {report.privileges}")
    click.echo(f"states      {report.states}")
    click.echo("a fresh namespace starts with:")
    for key, value in report.sysctls.items():
        click.echo(f"  {key} = {value}")
    for end, features in report.offloads.items():
        state = ", ".join(f"{name} {'on' if enabled else 'off'}" for name, enabled in features.items())
        click.echo(f"offloads on the {end}: {state}")
    click.echo("ok: the lab can run" + (" (degraded: see above)" if report.lacks else ""))
