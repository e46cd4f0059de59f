"""Experiments: exercises whose claim one trace cannot show.

A script checks one connection, segment by segment. A few claims are about
many connections (ISNs do not step predictably) or about the kernel's
configuration (tcp_tw_recycle is gone). An experiment is a module
``lab/course/experiments/<name>.py`` with ``run(experiment, family, settings) ->
RunResult``: it drives the real kernel through the same topologies and wire
(writing a capture where --pcap asks, when it sends anything), and reports
what it measured as notes and a Failure when the kernel contradicts the
expectation. Catalogue entries say ``experiment = true``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Experiment:
    """A runnable experiment, shaped like a parsed Script for the batch runner."""

    name: str
    length: float  # rough seconds, to start long runs first

    @property
    def path(self) -> str:
        return str(FOLDER / f"{self.module_name}.py")

    @property
    def module_name(self) -> str:
        return self.name.replace("-", "_")

    def run(self, family: int, settings):
        module = importlib.import_module(f"{__name__}.{self.module_name}")
        return dataclasses.replace(module.run(self, family, settings), exercise=self.name)


def failed_check(module_file: str, label: str, message: str):
    """A Failure at the experiment's line labelled ``# #label``: the check a claim names as its evidence."""
    from lab.judge.trace import Failure
    from lab.course.labels import line_of

    return Failure(line_of(module_file, label), f"check #{label}: {message}")
