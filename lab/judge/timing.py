"""The one timing rule, packetdrill's ``verify_time``: whether a moment falls in its line's window.

A line allows its event from its script time to its end (a range's high end,
a blocking call's end time; else the same moment), each side widened by the
tolerance: the larger of ``tolerance_usecs`` and ``tolerance_percent`` of the
gap the line counts from. Every check that judges a moment asks a ``Window``:
a kernel segment's arrival and a lab segment's sending (the matcher), the
start of a lab action, the return of a blocking call, the moment a state is
looked for and a time carried in a control message (the runner and the
kernel application), and a TS value's progress (the gap there is the time
since the script began, as in packetdrill).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.script.settings import Settings


def tolerance(settings: Settings, gap: float) -> float:
    """Seconds a moment may stray: max(tolerance_usecs, tolerance_percent of ``gap``)."""
    return max(settings.tolerance_usecs / 1e6, settings.tolerance_percent / 100 * max(gap, 0.0))


@dataclass(frozen=True)
class Window:
    """The script times a line allows its event in: ``start`` to ``end``, each widened by ``allowed``."""

    start: float
    end: float
    allowed: float

    @property
    def earliest(self) -> float:
        return self.start - self.allowed

    @property
    def latest(self) -> float:
        return self.end + self.allowed

    def holds(self, moment: float) -> bool:
        """Whether ``moment`` (script time) is on time."""
        return self.earliest <= moment <= self.latest

    def span(self) -> str:
        """The line's own window as a report writes it: 0.100, or 0.100~0.140 for a range."""
        return f"{self.start:.3f}" + (f"~{self.end:.3f}" if self.end != self.start else "")

    def off_ms(self, moment: float) -> float:
        """Milliseconds from the line's start to ``moment``: positive late, negative early."""
        return (moment - self.start) * 1000


def window(settings: Settings, start: float, since: float, end: float | None = None) -> Window:
    """The window of a line at script time ``start`` (ending at ``end``) that counts from ``since``."""
    return Window(start, start if end is None else end, tolerance(settings, start - since))
