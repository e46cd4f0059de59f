"""Errors a user can act on, each with the exit code the CLI documents.

0 pass, 1 mismatch (the kernel did something else), 2 bad input or usage,
3 environment (no privileges, no namespaces), 4 inconclusive: no kernel
mismatch, but the lab itself was late for a line (a busy machine), so a run
could not judge the kernel. The CLI prints ``str(error)`` as one line; never
a traceback.
"""

from __future__ import annotations

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_LAB_LATE = 4


class LabError(Exception):
    """Base: a message for the user and an exit code."""

    exit_code = EXIT_BAD_INPUT


class BadInput(LabError):
    """The user's input is wrong: what, where (file:line), what to do."""

    exit_code = EXIT_BAD_INPUT


class EnvironmentProblem(LabError):
    """The machine cannot run the lab: no privileges, no namespaces."""

    exit_code = EXIT_ENVIRONMENT


class Mismatch(LabError):
    """The kernel did something other than what was expected."""

    exit_code = EXIT_MISMATCH


class LabLate(LabError):
    """The lab itself was late for a line, so the kernel could not be judged (a busy machine)."""

    exit_code = EXIT_LAB_LATE
