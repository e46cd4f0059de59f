"""Malformed scripts: always one clean BadInput, never another exception.

Parsing and the preflight checks run before any namespace exists, so a bad
script can never leave a topology behind; no kernel is needed to check them.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.live.preflight import preflight
from lab.script.settings import Settings
from lab.errors import BadInput
from lab.script.parser import parse

SEED = (Path(__file__).parents[1] / "scripts" / "passive_open.pkt").read_text()
ALPHABET = st.sampled_from(list("<>()[]{}:.,=~+-*|`%/\"'0123456789 \nSFRPackwinmssTSval...ecr"))


def check(text: str) -> None:
    try:
        script = parse(text, "fuzz.pkt")
        preflight(script, Settings())
    except BadInput as error:
        message = str(error)
        assert message.startswith("fuzz.pkt:") and "\n" not in message


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_scripts_fail_cleanly(data):
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.text(ALPHABET, max_size=6))
        text = text[:position] + insert + text[position + cut:]
    check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(text):
    check(text)


