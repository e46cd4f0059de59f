"""The exercise catalogue: scripts shipped with tcplab, each with the claim it tests.

An exercise is a script in lab/exercises/NAME.pkt (drive or observe mode),
or an experiment in lab/experiments/ where one trace cannot show the claim,
plus its entry in lab/exercises/catalogue.toml: title, the claim from the
teaching material (a short English paraphrase) and the seed article it comes
from, and the verdict on the kernel it was checked on.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import BadInput

FOLDER = Path(__file__).with_name("exercises")
MODES = ("drive", "observe")


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    mode: str  # "drive" or "observe"
    claim: str
    source: str  # the seed article's file name
    verdict: str  # "confirmed", or what Linux actually does
    explanation: str = ""
    experiment: bool = False  # a Python experiment instead of a script
    length: float = 1.0  # an experiment's rough run time in seconds

    @property
    def script(self) -> Path:
        """The file that defines the exercise: its script, or its experiment's module."""
        if self.experiment:
            return Path(self.runnable().path)
        return FOLDER / f"{self.name}.pkt"

    def runnable(self):
        """What the batch runner runs: a parsed Script, or an Experiment."""
        if self.experiment:
            from .experiments import Experiment

            return Experiment(self.name, self.length)
        from .script.parser import parse_file

        return parse_file(str(FOLDER / f"{self.name}.pkt"))

    @property
    def runtime(self) -> float:
        """Seconds one run takes at least: the script's timeline (an experiment's estimate)."""
        return self.length if self.experiment else self.runnable().length

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "title": self.title, "mode": self.mode, "runtime_s": round(self.runtime, 2),
                "claim": self.claim, "source": self.source, "verdict": self.verdict}


@cache
def exercises() -> tuple[Exercise, ...]:
    """Every exercise, in catalogue order."""
    with open(FOLDER / "catalogue.toml", "rb") as handle:
        entries = tomllib.load(handle)
    return tuple(Exercise(name=name, **fields) for name, fields in entries.items())


def find(name: str) -> Exercise:
    for exercise in exercises():
        if exercise.name == name:
            return exercise
    raise BadInput(f"{name}: no such script file or exercise; `tcplab list` shows the exercises")
