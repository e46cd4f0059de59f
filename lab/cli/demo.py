"""``tcplab demo``: the first real handshake, printed step by step."""

from __future__ import annotations

import click

from lab.privileges import ensure_lab_privileges


def _number(value: int, isn: int, absolute: bool) -> str:
    relative = (value - isn) % 2**32
    return f"{relative} ({value})" if absolute else str(relative)


@click.command()
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="Use IPv6 (2001:db8::/64) instead of IPv4.")
@click.option("--isn", type=click.IntRange(0, 2**32 - 1), help="The lab's initial sequence number x (default: random).")
@click.option("--absolute", is_flag=True, help="Show absolute sequence numbers beside the relative ones.")
def demo(ipv6: bool, isn: int | None, absolute: bool) -> None:
    """Handshake and close: a Scapy client in the lab, a real listener in the kernel.

    Shows each segment with numbers relative to each side's ISN (x for the
    lab, y for the kernel) and the kernel socket's state as sock_diag reports
    it after the segment: LISTEN, SYN_RECV, ESTABLISHED, CLOSE_WAIT, LAST_ACK.
    """
    ensure_lab_privileges()
    from lab.demo import run_demo

    result = run_demo(6 if ipv6 else 4, lab_isn=isn)
    lab, kernel = result.lab, result.kernel
    click.echo(f"lab {lab[0]} port {lab[1]}  <->  kernel {kernel[0]} port {kernel[1]}  (IPv{result.family})")
    click.echo(f"lab ISN x = {result.lab_isn}, kernel ISN y = {result.kernel_isn} (learnt from its SYN-ACK)")
    click.echo(f"kernel socket before the first segment: {result.listen_state}\n")
    width = 21 if absolute else 10
    header = f"{'#':>2}  {'direction':<14} {'flags':<5} {'seq':>{width}} {'ack':>{width}}  {'kernel state':<12} {'lab state':<11} why"
    click.echo(header)
    for number, step in enumerate(result.steps, 1):
        segment = step.segment
        own_isn, peer_isn = (result.lab_isn, result.kernel_isn) if step.from_lab else (result.kernel_isn, result.lab_isn)
        direction = "lab -> kernel" if step.from_lab else "kernel -> lab"
        seq = _number(segment.seq, own_isn, absolute)
        ack = _number(segment.ack, peer_isn, absolute) if "." in segment.flag_text else "-"
        click.echo(f"{number:>2}  {direction:<14} {segment.flag_text:<5} {seq:>{width}} {ack:>{width}}  "
                   f"{step.kernel_state:<12} {step.lab_state:<11} {step.note}")
