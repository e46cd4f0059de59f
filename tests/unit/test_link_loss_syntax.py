"""``link lose`` lines: what the parser makes of them, and one clear file:line:column for a malformed one."""

from __future__ import annotations

import pytest

from lab.script.events import LinkEvent, LossEvent
from lab.script.lexer import ScriptSyntaxError
from lab.script.parser import parse

OPEN = "0 client socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"


def only_link_line(line: str) -> LossEvent | LinkEvent:
    return parse(OPEN + line + "\n", "x.pkt").events[1]


@pytest.mark.parametrize(("line", "sender", "flags", "nth", "every", "delay"), [
    ("+0 link lose client > F.", "client", "F.", 1, None, None),
    ("+0 link lose server > S.", "server", "S.", 1, None, None),
    ("+0 link lose client > .", "client", ".", 1, None, None),
    ("+.2 link lose server > P. nth 3", "server", "P.", 3, None, None),
    ("+0 link lose client > . every 2", "client", ".", 1, 2, None),
    ("+0 link delay server > S. 0.3", "server", "S.", 1, None, 0.3),
    ("+0 link delay client > P. .25 every 3", "client", "P.", 1, 3, 0.25),
])
def test_loss_and_delay_lines(line, sender, flags, nth, every, delay):
    event = only_link_line(line)
    assert isinstance(event, LossEvent)
    assert (event.sender, event.flags, event.nth, event.every, event.delay) == (sender, flags, nth, every, delay)
    assert event.endpoint is None and event.text == line


def test_rate_lines_still_parse():
    event = only_link_line("+0 link rate 8000 burst 90")
    assert isinstance(event, LinkEvent) and (event.rate, event.burst) == (8000, 90)


def test_loss_lines_need_no_endpoint_prefix_in_an_observe_script():
    script = parse(OPEN + "+0 link lose server > F.\n+0 client > S 0:0(0) <...>\n", "x.pkt")
    assert script.observe and isinstance(script.events[1], LossEvent)


@pytest.mark.parametrize(("line", "message"), [
    ("+0 link lose F.", "x.pkt:2:14: expected 'client' or 'server' (the endpoint whose segment the link loses)"),
    ("+0 link lose client F.", "x.pkt:2:21: expected '>' after 'client'"),
    ("+0 link lose client >", "x.pkt:3:1: expected TCP flags"),
    ("+0 link lose client > F. nth 0", "x.pkt:2:30: nth counts matching segments from 1, found 0"),
    ("+0 link lose client > F. every x", "x.pkt:2:32: expected how many matching segments (every N)"),
    ("+0 link drop client > F.", "x.pkt:2:9: expected 'rate N burst B' (a slow link), 'lose client|server > FLAGS'"),
    ("+0 link delay client > F. nth 2", "x.pkt:2:27: expected the delay in seconds (link delay client > F. 0.2)"),
    ("+0 link delay server > S. 0", "x.pkt:2:27: the delay must be more than 0 and at most 60 s"),
    ("+0 link delay server > S. 61", "x.pkt:2:27: the delay must be more than 0 and at most 60 s"),
    ("+0 server link lose client > F.", "x.pkt:2:4: after 'server' expected"),
])
def test_a_malformed_loss_line_is_one_located_error(line, message):
    with pytest.raises(ScriptSyntaxError) as raised:
        parse(OPEN + line + "\n", "x.pkt")
    text = str(raised.value)
    assert text.startswith(message), text
    assert "\n" not in text
