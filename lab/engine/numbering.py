"""Script numbers <-> live numbers: sequence spaces and timestamps.

A script writes every number relative to its side's ISN. The lab's side is
mapped onto a random live ISN chosen per run; the kernel's ISN is learnt from
its first SYN or SYN-ACK (before that, kernel numbers are taken as absolute,
as for a RST answering a SYN to a closed port). The kernel's TS val is learnt
the same way from its first timestamp; a script's TS ecr in an injected
segment refers to the script's TS vals, so it is mapped with that offset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MOD = 2**32


@dataclass
class Numbering:
    lab_offset: int = field(default_factory=lambda: random.getrandbits(32))
    kernel_offset: int | None = None
    kernel_ts_offset: int | None = None

    # lab sequence space (the lab's seq, the kernel's ack)
    def lab_live(self, script_value: int) -> int:
        return (script_value + self.lab_offset) % MOD

    def lab_script(self, live_value: int) -> int:
        return (live_value - self.lab_offset) % MOD

    # kernel sequence space (the kernel's seq, the lab's ack)
    def learn_kernel_isn(self, live_seq: int, script_seq: int) -> None:
        if self.kernel_offset is None:
            self.kernel_offset = (live_seq - script_seq) % MOD

    def kernel_live(self, script_value: int) -> int:
        return (script_value + (self.kernel_offset or 0)) % MOD

    def kernel_script(self, live_value: int) -> int:
        return (live_value - (self.kernel_offset or 0)) % MOD

    # the kernel's timestamps
    def learn_kernel_ts(self, live_val: int, script_val: int) -> None:
        if self.kernel_ts_offset is None:
            self.kernel_ts_offset = (live_val - script_val) % MOD

    def kernel_ts_live(self, script_value: int) -> int:
        return (script_value + (self.kernel_ts_offset or 0)) % MOD

    def kernel_ts_script(self, live_value: int) -> int:
        return (live_value - (self.kernel_ts_offset or 0)) % MOD
