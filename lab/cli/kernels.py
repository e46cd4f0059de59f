"""``tcplab kernels``: fetch other kernel releases, and run tcplab on them (lab/live/kernels.py)."""

from __future__ import annotations

import sys

import click

from lab.errors import EXIT_ENVIRONMENT


@click.group()
def kernels() -> None:
    """Other kernel releases: Debian's images, booted with virtme-ng; tcplab runs inside (docs/kernels.md)."""


@kernels.command()
@click.argument("releases", nargs=-1, required=True, metavar="RELEASE...")
def fetch(releases: tuple[str, ...]) -> None:
    """Download and unpack the newest Debian image of each RELEASE (6.12, 6.1) into the cache."""
    from lab.live.kernels import fetch as fetch_kernel

    for release in releases:
        kernel = fetch_kernel(release)
        click.echo(f"{kernel.release}  {kernel.vmlinuz}")


@kernels.command(name="list")
def list_kernels() -> None:
    """The kernels fetched so far."""
    from lab.live.kernels import cache_folder, fetched

    for kernel in fetched():
        click.echo(f"{kernel.release}  {kernel.vmlinuz}")
    if not fetched():
        click.echo(f"none in {cache_folder()}; `tcplab kernels fetch 6.12` fetches one")


@kernels.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("kernel", metavar="KERNEL")
@click.argument("tcplab_args", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- TCPLAB-ARGS...")
@click.option("--kvm/--no-kvm", default=False, show_default=True,
              help="Use KVM (where it works; without it the guest is emulated and runs get --slow).")
@click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--memory", default="2G", show_default=True)
def run(kernel: str, tcplab_args: tuple[str, ...], kvm: bool, cpus: int, memory: str) -> None:
    """Boot KERNEL (a fetched release, or a vmlinuz with its modules beside it) and run `tcplab TCPLAB-ARGS` in it.

    The guest sees this host's files, runs this tcplab from this folder, and prints what it prints: `tcplab
    kernels run 6.12 run --all --json > 6.12.json` records the catalogue on 6.12, each run naming its kernel,
    for `tcplab claims --from`. Exit: the guest command's.
    """
    from lab.live.kernels import boot, guest_command, missing_tools, resolve

    lacking = missing_tools()
    if lacking:
        click.echo(f"tcplab: booting another kernel needs: {', '.join(lacking)}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    args = list(tcplab_args[1:] if tcplab_args[:1] == ("--",) else tcplab_args)  # click keeps a leading --
    chosen = resolve(kernel)
    click.echo(f"tcplab: booting {chosen.release} ({'KVM' if kvm else 'emulated, no KVM: runs get --slow'})",
               err=True)
    sys.exit(boot(chosen, guest_command(chosen, args, kvm, cpus, memory)))
