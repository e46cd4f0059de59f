"""TCP's states and timers as the kernel names them: the one table the parser, sock_diag and the traces use.

Numbers are the kernel's (include/net/tcp_states.h; idiag_timer in
net/ipv4/inet_diag.c); names are what scripts write after ``state`` and
``timer`` and what ladders show.
"""

from __future__ import annotations

STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",  # a request socket; sock_diag reports it as SYN_RECV
}
CLOSED = "CLOSED"  # what a connection the kernel no longer lists is
SCRIPT_STATES = frozenset(STATES.values()) - {"NEW_SYN_RECV"} | {CLOSED}  # what a state line may name
TIMERS = {0: None, 1: "retransmit", 2: "keepalive", 3: "time_wait", 4: "probe"}  # idiag_timer
NO_TIMER = "none"  # how a state line says no timer is pending
SCRIPT_TIMERS = frozenset(name for name in TIMERS.values() if name) | {NO_TIMER}
