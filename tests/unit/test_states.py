"""The tracepoint reader and the state merger, on trace lines written by hand from the events' formats.

The lines follow what an instance with ``options/fields`` prints: every
field as ``name=0xHEX (DECIMAL)``, address arrays as ``<INVALID-SIZE>``.
"""

from __future__ import annotations

from lab.live.states import kernel_events, merge
from lab.judge.trace import Step
from lab.live.tracepoints import parse, parse_line, port_filter, select, unclaimed_resets

LAB_PORT = 45000
OTHER_RUN_PORT = 51234
SOCK_A, SOCK_B, SOCK_OTHER = 0xFFFF888100000100, 0xFFFF888100000200, 0xFFFF888100000300
STATE = {"ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT1": 4, "FIN_WAIT2": 5, "CLOSE": 7,
         "CLOSE_WAIT": 8, "LAST_ACK": 9, "LISTEN": 10, "CLOSING": 11}


def field(name: str, value: int) -> str:
    return f"{name}=0x{value:x} ({value})"


def line(when: float, event: str, **fields: int) -> str:
    body = " ".join(field(name, value) for name, value in fields.items())
    return f"          python3-4242    [001] ..s2.  {when:.6f}: {event}: {body} saddr_v6=<INVALID-SIZE> daddr_v6=<INVALID-SIZE>"


def set_state(when: float, sock: int, old: str, new: str, sport: int, dport: int) -> str:
    return line(when, "inet_sock_set_state", skaddr=sock, oldstate=STATE[old], newstate=STATE[new], sport=sport,
                dport=dport, family=2, protocol=6, saddr=0x10012C6, daddr=0x20012C6)


HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: 9/9   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""
ZERO = 1000.0  # the run's script time 0 on CLOCK_MONOTONIC


def elapsed(moment: float) -> float:
    return moment - ZERO


def owner(port: int) -> str:
    return "kernel"


def step(time: float, sender: str, flags: str) -> Step:
    return Step(time, sender, sender == "lab", "<" if sender == "lab" else ">", flags, 0, 0, 0, None, 0, (), 0, None)


def passive_trace() -> str:
    """A passive open and a close by the kernel, plus another run's socket on another port."""
    return HEADER + "\n".join([
        set_state(1000.010200, SOCK_A, "LISTEN", "SYN_RECV", 8080, LAB_PORT),
        set_state(1000.010210, SOCK_A, "SYN_RECV", "ESTABLISHED", 8080, LAB_PORT),
        set_state(1000.010300, SOCK_OTHER, "LISTEN", "SYN_RECV", 8080, OTHER_RUN_PORT),
        set_state(1000.020000, SOCK_A, "ESTABLISHED", "FIN_WAIT1", 8080, LAB_PORT),
        line(1000.220000, "tcp_retransmit_skb", skbaddr=1, skaddr=SOCK_A, state=4, sport=8080, dport=LAB_PORT,
             family=2, saddr=0, daddr=0, err=0),
        set_state(1000.230000, SOCK_A, "FIN_WAIT1", "FIN_WAIT2", 8080, LAB_PORT),
        set_state(1000.240000, SOCK_A, "FIN_WAIT2", "CLOSE", 8080, LAB_PORT),
        line(1000.300000, "tcp_send_reset", skbaddr=2, skaddr=0, state=0, reason=1),
        line(1000.400000, "tcp_send_reset", skbaddr=3, skaddr=SOCK_OTHER, state=1, reason=8),
    ]) + "\n"


def test_a_line_gives_its_time_name_and_numeric_fields():
    event = parse_line(set_state(1000.010200, SOCK_A, "LISTEN", "SYN_RECV", 8080, LAB_PORT))
    assert event.name == "inet_sock_set_state" and event.time == 1000.0102
    assert event.fields["skaddr"] == SOCK_A and event.ports == (8080, LAB_PORT)
    assert event.fields["oldstate"] == 10 and "saddr_v6" not in event.fields
    assert parse_line("#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION") is None


def test_only_the_runs_own_ports_and_sockets_are_selected():
    events = parse(passive_trace())
    chosen = select(events, range(LAB_PORT, LAB_PORT + 16))
    assert {event.get("skaddr") for event in chosen} == {SOCK_A}
    assert not any(event.name == "tcp_send_reset" for event in chosen)  # the other run's reset is not ours
    assert [event.get("skbaddr") for event in unclaimed_resets(events, chosen)] == [2, 3]


def test_a_connects_portless_first_change_is_the_runs_when_its_socket_next_shows_the_port():
    ours = range(40000, 40064)
    events = parse("\n".join([
        set_state(1000.001, SOCK_A, "CLOSE", "SYN_SENT", 0, 8080),
        set_state(1000.001, SOCK_B, "CLOSE", "SYN_SENT", 0, 8080),  # another run's connect()
        set_state(1000.002, SOCK_A, "SYN_SENT", "ESTABLISHED", 40002, 8080),
        set_state(1000.002, SOCK_B, "SYN_SENT", "ESTABLISHED", 43000, 8080),
    ]))
    chosen = select(events, ours)
    assert [(event.get("skaddr"), event.get("newstate")) for event in chosen] == [(SOCK_A, 2), (SOCK_A, 1)]
    changes = merge(chosen, [], [], lambda port: "client", elapsed)
    assert [(change.new, change.port) for change in changes] == [("SYN_SENT", 40002), ("ESTABLISHED", 40002)]


def test_an_earlier_runs_orphan_on_a_nearby_port_is_not_the_runs():
    """The CI failure: an orphan of an earlier run (born before this run) dies during it, its port in range."""
    events = parse("\n".join([
        set_state(1000.010, SOCK_A, "LISTEN", "SYN_RECV", 8080, LAB_PORT),
        line(1000.500, "tcp_retransmit_skb", skbaddr=1, skaddr=SOCK_OTHER, state=4, sport=8080, dport=LAB_PORT + 3,
             family=2, saddr=0, daddr=0, err=0),
        set_state(1000.900, SOCK_OTHER, "FIN_WAIT1", "CLOSE", 8080, LAB_PORT + 3),
        set_state(1001.000, SOCK_A, "SYN_RECV", "ESTABLISHED", 8080, LAB_PORT),
        set_state(1001.400, SOCK_A, "ESTABLISHED", "FIN_WAIT1", 8080, LAB_PORT),
        set_state(1001.500, SOCK_A, "FIN_WAIT1", "CLOSE", 8080, LAB_PORT),
    ]))
    chosen = select(events, range(LAB_PORT, LAB_PORT + 16))
    assert {event.get("skaddr") for event in chosen} == {SOCK_A}
    changes = merge(chosen, [], [], owner, elapsed)
    assert [(c.old, c.new) for c in changes if c.new == "CLOSED"] == [("FIN_WAIT1", "CLOSED")]


def test_the_filter_names_the_whole_port_range():
    assert port_filter(range(45000, 45016)) == (
        "((sport >= 45000 && sport <= 45015) || (dport >= 45000 && dport <= 45015))")


def test_merge_puts_the_request_sock_at_its_syn_and_time_wait_where_sock_diag_saw_it():
    chosen = select(parse(passive_trace()), range(LAB_PORT, LAB_PORT + 16))
    steps = [step(0.0100, "lab", "S"), step(0.0101, "kernel", "S."), step(0.0102, "lab", ".")]
    samples = [(0.0103, {"kernel": "ESTABLISHED"}), (0.25, {"kernel": "TIME_WAIT"}), (61.0, {"kernel": "CLOSED"})]
    changes = merge(chosen, samples, steps, owner, elapsed)
    assert [(round(c.time, 4), c.old, c.new, c.source) for c in changes] == [
        (0.0100, "LISTEN", "SYN_RECV", "capture"),
        (0.0102, "SYN_RECV", "ESTABLISHED", "tracepoint"),
        (0.0200, "ESTABLISHED", "FIN_WAIT1", "tracepoint"),
        (0.2300, "FIN_WAIT1", "FIN_WAIT2", "tracepoint"),
        (0.2400, "FIN_WAIT2", "TIME_WAIT", "tracepoint+sock_diag"),
        (61.0, "TIME_WAIT", "CLOSED", "sampled"),
    ]


def test_an_orphans_fin_wait2_minisock_keeps_its_state_until_a_sample_sees_it_gone():
    events = parse("\n".join([
        set_state(1000.010, SOCK_A, "FIN_WAIT1", "FIN_WAIT2", 8080, LAB_PORT),
        set_state(1000.011, SOCK_A, "FIN_WAIT2", "CLOSE", 8080, LAB_PORT),
    ]))
    samples = [(0.012, {"kernel": "FIN_WAIT2"}), (1.1, {"kernel": "CLOSED"})]
    changes = merge(events, samples, [], owner, elapsed)
    assert [(c.old, c.new, c.source) for c in changes] == [("FIN_WAIT1", "FIN_WAIT2", "tracepoint"),
                                                           ("FIN_WAIT2", "CLOSED", "sampled")]


def test_without_tracepoints_every_sampled_change_is_labelled_sampled():
    samples = [(0.0, {"kernel": "CLOSED"}), (0.01, {"kernel": "SYN_RECV"}), (0.02, {"kernel": "ESTABLISHED"})]
    changes = merge([], samples, [], owner, elapsed)
    assert [(c.old, c.new, c.source) for c in changes] == [("CLOSED", "SYN_RECV", "sampled"),
                                                           ("SYN_RECV", "ESTABLISHED", "sampled")]


def test_a_sample_that_lags_a_traced_change_adds_nothing():
    events = parse(set_state(1000.010, SOCK_A, "ESTABLISHED", "FIN_WAIT1", 8080, LAB_PORT))
    changes = merge(events, [(0.0101, {"kernel": "ESTABLISHED"})], [], owner, elapsed)
    assert [(c.old, c.new) for c in changes] == [("ESTABLISHED", "FIN_WAIT1")]


def test_kernel_events_say_why_and_an_unclaimed_reset_is_the_runs_only_when_its_rst_follows():
    events = parse(passive_trace())
    chosen = select(events, range(LAB_PORT, LAB_PORT + 16))
    socketless = unclaimed_resets(events, chosen)
    steps = [step(0.3005, "kernel", "R.")]
    found = kernel_events(chosen, socketless, steps, owner, elapsed, {"kernel"})
    assert [(round(e.time, 3), e.text) for e in found] == [(0.22, "retransmission (in FIN_WAIT1)"),
                                                            (0.3, "RST sent: NO_SOCKET")]
    late = [step(0.31, "kernel", "R.")]  # 10 ms later: someone else's reset
    assert len(kernel_events(chosen, socketless, late, owner, elapsed, {"kernel"})) == 1


def test_an_orphans_fin_wait2_minisock_enters_time_wait_at_the_peers_fin():
    events = parse("\n".join([
        set_state(1000.100, SOCK_A, "FIN_WAIT1", "FIN_WAIT2", 40002, 8080),
        set_state(1000.101, SOCK_A, "FIN_WAIT2", "CLOSE", 40002, 8080),
    ]))
    steps = [step(0.2479, "server", "F."), step(0.2480, "client", ".")]
    samples = [(0.102, {"client": "FIN_WAIT2"}), (0.2490, {"client": "TIME_WAIT"})]
    changes = merge(events, samples, steps, lambda port: "client", elapsed)
    assert [(c.time, c.old, c.new, c.source) for c in changes][-1] == (0.2479, "FIN_WAIT2", "TIME_WAIT", "capture")


def test_pending_timers_are_listed_when_first_seen():
    from lab.live.states import pending_timers
    from lab.live.observer import SocketInfo

    def info(timer, left):
        return SocketInfo("FIN_WAIT1", ("198.18.0.2", 40002), ("198.18.0.1", 8080), timer, left)

    samples = [(0.10, {"client": info("retransmit", 204)}), (0.12, {"client": info("retransmit", 184)}),
               (0.15, {"client": info("time_wait", 60000)}), (0.30, {"client": None})]
    assert [(t.time, t.timer, t.left_ms) for t in pending_timers(samples)] == [(0.10, "retransmit", 204),
                                                                              (0.15, "time_wait", 60000)]


def test_a_second_run_at_once_in_one_process_falls_back_to_samples():
    from lab.live.tracepoints import _IN_USE, KernelTrace

    with _IN_USE:  # another run of this process holds the instance
        trace = KernelTrace()
        trace.start(range(40000, 40016))
        assert trace.unavailable == "another run of this process is using its trace instance"
        assert trace.read() == ([], [])
        trace.close()
    assert not _IN_USE.locked()


def test_another_runs_connect_on_a_reused_socket_address_is_not_the_runs():
    """A socket's address is reused after it is freed: another run's portless connect() at the address this run's
    passive child gets next is not this run's (its next traced change does not continue from SYN_SENT)."""
    events = parse("\n".join([
        set_state(1000.001, SOCK_B, "CLOSE", "SYN_SENT", 0, 8080),  # another run's connect(); its later changes
        set_state(1000.040, SOCK_B, "LISTEN", "SYN_RECV", 8080, LAB_PORT),  # are not traced here; then the run's
        set_state(1000.050, SOCK_B, "SYN_RECV", "ESTABLISHED", 8080, LAB_PORT),  # child gets the freed address
    ]))
    chosen = select(events, range(LAB_PORT, LAB_PORT + 16))
    assert [(event.get("oldstate"), event.get("newstate")) for event in chosen] == [(10, 3), (3, 1)]


def test_a_reset_from_a_reused_address_after_the_runs_socket_closed_is_not_the_runs():
    events = parse("\n".join([
        set_state(1000.005, SOCK_A, "LISTEN", "SYN_RECV", 8080, LAB_PORT),
        set_state(1000.010, SOCK_A, "SYN_RECV", "ESTABLISHED", 8080, LAB_PORT),
        line(1000.020, "tcp_send_reset", skbaddr=1, skaddr=SOCK_A, state=1, reason=8),  # ours: ABORT_ON_CLOSE
        set_state(1000.020, SOCK_A, "ESTABLISHED", "CLOSE", 8080, LAB_PORT),
        line(1000.300, "tcp_send_reset", skbaddr=2, skaddr=SOCK_A, state=1, reason=8),  # another run's socket now
    ]))
    chosen = select(events, range(LAB_PORT, LAB_PORT + 16))
    assert [event.get("skbaddr") for event in chosen if event.name == "tcp_send_reset"] == [1]
