"""Script numbers <-> live numbers: sequence spaces and timestamps.

A script writes every number relative to its side's ISN. The lab's side is
mapped onto a random live ISN chosen per run; the kernel's ISN is learnt from
its first SYN or SYN-ACK (before that, kernel numbers are taken as absolute,
as for a RST answering a SYN to a closed port). The kernel's TS vals are learnt
as they arrive: each ``>`` line's script TS val is remembered with the live
value it matched, and a script's TS ecr in an injected segment is replaced by
the live val of that line (packetdrill's rule); an ecr the script never saw
is placed relative to the first learnt timestamp.
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
    kernel_ts_seen: dict[int, int] = field(default_factory=dict)  # script TS val -> live TS val

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
        self.kernel_ts_seen[script_val] = live_val

    def kernel_ts_live(self, script_value: int) -> int:
        if script_value in self.kernel_ts_seen:
            return self.kernel_ts_seen[script_value]
        return (script_value + (self.kernel_ts_offset or 0)) % MOD

    def kernel_ts_script(self, live_value: int) -> int:
        return (live_value - (self.kernel_ts_offset or 0)) % MOD
