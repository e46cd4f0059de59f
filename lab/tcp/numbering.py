"""Script numbers <-> live numbers: one sequence space and one TS clock per side.

A script writes every number relative to its side's ISN. A side the lab
plays (drive mode) gets a random live ISN per run; a real side's ISN is
learnt from its first SYN or SYN-ACK (before that its numbers are taken as
absolute, as for a RST answering a SYN to a closed port). TS vals of a real
side are learnt as they arrive: each script TS val is remembered with the live
value it matched, and a TS ecr the lab injects is replaced by the live val of
that line (packetdrill's rule); a value never seen is placed relative to the
first learnt timestamp.

As in packetdrill, a SYN's own numbers (its seq, and the ack of a SYN-ACK)
are read as written, so ``S 999000:999000(0)`` names ISN 999000; every
other segment's numbers count from the ISN, so ``1:1(0)`` is ISN + 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MOD = 2**32


@dataclass
class Side:
    """One endpoint's sequence space and timestamp clock."""

    offset: int | None = None
    isn: int | None = None  # the ISN the script wrote in this side's SYN (0 until one is seen)
    ts_offset: int | None = None
    ts_seen: dict[int, int] = field(default_factory=dict)  # script TS val -> live TS val

    @classmethod
    def played(cls, isn: int | None = None) -> Side:
        """A side the lab plays: its live ISN is ``isn``, or chosen at random."""
        return cls(offset=random.getrandbits(32) if isn is None else isn, ts_offset=0)

    def learn(self, live_seq: int, script_seq: int, syn: bool = True) -> None:
        """Learn the sequence space from a segment: a SYN's seq is its ISN as the script wrote it; any
        other segment's seq counts from an ISN of 0 (a capture that begins mid-connection)."""
        if self.offset is None:
            self.offset = (live_seq - script_seq) % MOD
            self.claim_isn(script_seq if syn else 0)

    def claim_isn(self, script_seq: int) -> None:
        """Note the ISN a SYN line of this side wrote (the first one counts)."""
        if self.isn is None:
            self.isn = script_seq

    def _base(self, syn: bool) -> int:
        return (self.offset or 0) + (0 if syn else self.isn or 0)

    def live(self, script_value: int, syn: bool = False) -> int:
        """A script number as a live one; ``syn``: a number of a SYN segment, written as is."""
        return (script_value + self._base(syn)) % MOD

    def script(self, live_value: int, syn: bool = False) -> int:
        return (live_value - self._base(syn)) % MOD

    def learn_ts(self, live_val: int, script_val: int) -> None:
        if self.ts_offset is None:
            self.ts_offset = (live_val - script_val) % MOD
        self.ts_seen[script_val] = live_val

    def ts_live(self, script_value: int) -> int:
        if script_value in self.ts_seen:
            return self.ts_seen[script_value]
        return (script_value + (self.ts_offset or 0)) % MOD

    def ts_script(self, live_value: int) -> int:
        return (live_value - (self.ts_offset or 0)) % MOD
