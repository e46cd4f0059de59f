"""``tcplab topo``: build a topology to explore by hand, list runs, clean up."""

from __future__ import annotations

import os
import signal
import time

import click

from lab.errors import BadInput
from lab.privileges import ensure_lab_privileges

DOWN_TIMEOUT = 5.0


def _parse_sysctls(pairs: tuple[str, ...]) -> dict[str, str]:
    sysctls = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("net."):
            raise BadInput(f"--sysctl {pair!r}: expected net.KEY=VALUE, e.g. net.ipv4.tcp_fin_timeout=5")
        sysctls[key] = value
    return sysctls


@click.group()
def topo() -> None:
    """Lab topologies: namespaces named tcplab-<pid>-<start>-<n>-<role>."""


@topo.command()
@click.option("--observe", is_flag=True, help="Give the lab end 198.18.0.2 / 2001:db8::2 for a real client.")
@click.option("--loopback", is_flag=True, help="One namespace with lo up (127.0.0.1 / ::1) instead of a veth pair.")
@click.option("--mtu", type=click.IntRange(1280, 65535), default=1500, show_default=True, help="MTU of the veth pair.")
@click.option("--sysctl", "sysctls", multiple=True, metavar="KEY=VALUE", help="A net.* sysctl for the kernel namespace.")
def up(observe: bool, loopback: bool, mtu: int, sysctls: tuple[str, ...]) -> None:
    """Build a topology and hold it until Ctrl-C or SIGTERM, then remove it."""
    from netns import LoopbackTopology, VethTopology

    settings = _parse_sysctls(sysctls)
    mode = ensure_lab_privileges()
    topology = LoopbackTopology(settings) if loopback else VethTopology(observe=observe, mtu=mtu, sysctls=settings)
    with topology:
        for name in topology.namespaces:
            click.echo(f"namespace {name}")
        if not loopback:
            click.echo(f"veth {topology.kernel_if} (kernel, {topology.kernel_mac}) <-> {topology.lab_if} (lab, {topology.lab_mac})")
        if mode == "rootless":
            click.echo("rootless: these namespaces are private to this process")
            click.echo("ready; Ctrl-C removes it", err=True)
        else:
            click.echo(f"ready; Ctrl-C or `tcplab topo down {os.getpid()}` removes it", err=True)
        while True:
            # Not signal.pause(): a signal landing between Python's check and
            # the pause() call would leave it waiting forever.
            time.sleep(0.2)


@topo.command(name="ls")
def list_runs() -> None:
    """List tcplab runs with namespaces on this machine, live or dead."""
    from netns.runs import runs

    for run in runs():
        status = "live" if run.alive else "dead"
        click.echo(f"pid {run.run.pid:<8} {status:<5} {' '.join(run.namespaces)}")


@topo.command()
@click.argument("pids", nargs=-1, type=int)
@click.option("--all", "all_runs", is_flag=True, help="Every run, live ones included.")
def down(pids: tuple[int, ...], all_runs: bool) -> None:
    """Tear down runs: a live run is asked to stop (SIGTERM), a dead run's namespaces are removed."""
    from netns import namespace
    from netns.runs import runs

    if not pids and not all_runs:
        raise BadInput("topo down: name the run's PID (see `tcplab topo ls`) or pass --all")
    chosen = [run for run in runs() if all_runs or run.run.pid in pids]
    unknown = set(pids) - {run.run.pid for run in chosen}
    if unknown:
        raise BadInput(f"topo down: no tcplab run with pid {', '.join(map(str, sorted(unknown)))} "
                       "(`tcplab topo ls` lists them)")
    for run in chosen:
        if run.alive and run.run.pid != os.getpid():
            os.kill(run.run.pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while any(run.alive for run in chosen) and time.monotonic() < deadline:
        time.sleep(0.02)
    for run in chosen:
        if not run.alive:
            for name in run.namespaces:
                namespace.remove(name)
        click.echo(f"pid {run.run.pid}: {'still running' if run.alive else 'removed'}")


@topo.command()
def cleanup() -> None:
    """Remove what dead (SIGKILLed) runs left behind; live runs are never touched."""
    from netns.runs import remove_dead
    from netns.tracefs import remove_dead_instances

    removed = remove_dead()
    for name in removed:
        click.echo(f"removed {name}")
    click.echo(f"{len(removed)} namespace(s) of dead runs removed")
    instances = remove_dead_instances()
    for name in instances:
        click.echo(f"removed trace instance {name}")
    if instances:
        click.echo(f"{len(instances)} trace instance(s) of dead runs removed")
