"""Scripts travel to -j workers pickled: ``...`` must stay the one ELLIPSIS the engine compares with ``is``."""

from __future__ import annotations

import pickle

from lab.script.events import ELLIPSIS
from lab.script.parser import parse


def test_ellipsis_survives_pickling_as_itself():
    assert pickle.loads(pickle.dumps(ELLIPSIS)) is ELLIPSIS
    script = pickle.loads(pickle.dumps(parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "t.pkt")))
    assert script.events[0].args[0] is ELLIPSIS
