"""``tcplab demo``: the first real handshake, printed step by step."""

from __future__ import annotations

import click

from lab.judge.trace import LAB_LATE
from lab.errors import LabLate, Mismatch
from lab.privileges import ensure_lab_privileges


def _number(value: int, isn: int, absolute: bool) -> str:
    relative = (value - isn) % 2**32
    return f"{relative} ({value})" if absolute else str(relative)


@click.command()
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="Use IPv6 (2001:db8::/64) instead of IPv4.")
@click.option("--isn", type=click.IntRange(0, 2**32 - 1), help="The lab's initial sequence number x (default: random).")
@click.option("--absolute", is_flag=True, help="Show absolute sequence numbers beside the relative ones.")
def demo(ipv6: bool, isn: int | None, absolute: bool) -> None:
    """Handshake and close: the lab plays a client, a real listener waits in the kernel.

    Plays lab/course/first_handshake.pkt with the runner every run uses. Shows each segment with
    numbers relative to each side's ISN (x for the lab, y for the kernel) and
    the kernel socket's state as sock_diag reports it after the segment: from
    LISTEN before the first, through SYN_RECV, ESTABLISHED, CLOSE_WAIT and
    LAST_ACK, to CLOSED after the last.
    """
    ensure_lab_privileges()
    from lab.course.first_handshake import LAB_SIDE, run_demo
    from lab.views.report import render_failure

    result = run_demo(6 if ipv6 else 4, lab_isn=isn)
    if result.run.failure is not None:
        click.echo(render_failure(result.run))
        if result.run.failure.kind == LAB_LATE:  # a busy machine: inconclusive, not the kernel's doing
            raise LabLate("the lab itself was late (the report above says where); run the demo again")
        raise Mismatch("the kernel did not answer as the demo expects (the report above says where)")
    click.echo(f"lab ISN x = {result.lab_isn}, kernel ISN y = {result.kernel_isn} (learnt from its SYN-ACK)  "
               f"(IPv{result.run.family})")
    click.echo("kernel socket before the first segment: LISTEN\n")
    width = 21 if absolute else 10
    click.echo(f"{'#':>2}  {'direction':<14} {'flags':<5} {'seq':>{width}} {'ack':>{width}}  "
               f"{'kernel state':<12} {'lab state':<11} why")
    for number, (step, (lab_state, why)) in enumerate(zip(result.steps, LAB_SIDE, strict=True), 1):
        own, peer = (result.lab_isn, result.kernel_isn) if step.from_left else (result.kernel_isn, result.lab_isn)
        direction = "lab -> kernel" if step.from_left else "kernel -> lab"
        seq = _number(step.live_seq, own, absolute)
        ack = _number(step.live_ack, peer, absolute) if step.live_ack is not None else "-"
        click.echo(f"{number:>2}  {direction:<14} {step.flags:<5} {seq:>{width}} {ack:>{width}}  "
                   f"{step.states.get('kernel', ''):<12} {lab_state:<11} {why}")
