"""The exercise catalogue: scripts shipped with tcplab, each with the claim it mainly tests.

An exercise is a script in lab/course/exercises/NAME.pkt (drive or observe mode),
or an experiment in lab/course/experiments/ where one trace cannot show the claim,
plus its entry in lab/course/exercises/catalogue.toml: its title and explanation in
English and Chinese, and the id of its main claim in claims.toml (lab/course/claims.py),
which holds the article's sentence, the verdict and the findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.errors import BadInput

FOLDER = Path(__file__).with_name("exercises")
MODES = ("drive", "observe")


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    title_zh: str
    mode: str  # "drive" or "observe"
    claim_id: str  # its main row in claims.toml
    explanation: str = ""
    explanation_zh: str = ""
    experiment: bool = False  # a Python experiment instead of a script
    length: float = 1.0  # seconds a run takes at least (catalogue.toml; a test holds it to the script)

    @property
    def script(self) -> Path:
        """The file that defines the exercise: its script, or its experiment's module."""
        if self.experiment:
            return Path(self.runnable().path)
        return FOLDER / f"{self.name}.pkt"

    def runnable(self):
        """What the batch runner runs: a parsed Script, or an Experiment."""
        if self.experiment:
            from lab.course.experiments import Experiment

            return Experiment(self.name, self.length)
        return parsed(str(FOLDER / f"{self.name}.pkt"))

    @property
    def runtime(self) -> float:
        """Seconds one run takes at least: the script's timeline (an experiment's estimate), as declared."""
        return self.length

    def title_in(self, language: str) -> str:
        return self.title_zh if language == "zh" else self.title

    def explanation_in(self, language: str) -> str:
        return self.explanation_zh if language == "zh" else self.explanation


@cache
def parsed(path: str):
    """A catalogue script, parsed once per process (list, explain and the course's evidence all read it)."""
    from lab.script.parser import parse_file

    return parse_file(path)


def read_toml(path: Path) -> dict:
    """One of the course's TOML files; a syntax error is bad input naming the file."""
    import tomllib  # only where the course is read: a run of a script file of the user's does not

    with open(path, "rb") as handle:
        try:
            return tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise BadInput(f"{path}: {error}; fix the TOML") from None


@cache
def exercises() -> tuple[Exercise, ...]:
    """Every exercise, in catalogue order."""
    entries = read_toml(FOLDER / "catalogue.toml")
    found = []
    for name, entry in entries.items():
        entry = dict(entry)
        try:
            found.append(Exercise(name=name, claim_id=entry.pop("claim"), **entry))
        except (KeyError, TypeError) as error:
            raise BadInput(f"catalogue.toml: [{name}]: {error}; see the other entries for the fields") from None
    return tuple(found)


def find(name: str) -> Exercise:
    for exercise in exercises():
        if exercise.name == name:
            return exercise
    raise BadInput(f"{name}: no such script file or exercise; `tcplab list` shows the exercises")
