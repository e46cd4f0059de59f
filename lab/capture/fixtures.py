"""Deterministic pcap fixtures: captures/<exercise>.pcapng, regenerated from the kernel.

A live capture differs from run to run in everything random or timed: ISNs,
TS values, the lab's port, veth MAC addresses, IPv4 IDs, IPv6 flow labels
and arrival times. A fixture maps each onto a fixed value, so two
regenerations on the same kernel give byte-identical files and a diff
between kernels shows behaviour, not noise:

- sequence and acknowledgment numbers (and SACK blocks): each endpoint's
  first SYN becomes a fixed ISN, everything else keeps its offset from it
  (an endpoint whose first segment is no SYN keeps the script's numbers);
- TS val: a fixed base per endpoint plus the packet's script time in ms;
  TS ecr: the mapped value of the val it echoes;
- ports other than the server's: 40000, 40001, ... in order of appearance;
  MACs: 02:00:00:00:00:0N; IPv4 ID 0; IPv6 flow label 0;
- packet times: the script timeline (the line each packet matched), from 0.

Only segments that script lines matched are kept. The section header's
comment records the kernel release, the tcplab version and the TCP sysctls
in force; each packet's comment names the script line it matched. A fixture
that differs from the one in the folder only in kernel release or tcplab
version is not written (compare.py), so a regeneration on another kernel
build changes only the files whose behaviour changed.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lab import __version__
from lab.course.catalogue import Exercise
from lab.judge.trace import RunResult
from lab.live.batch import run_many
from lab.script.settings import Settings
from lab.capture.pcapng import pcapng_writer
from lab.script.events import SERVER_PORT, CommandEvent, PacketEvent, Script

from lab.capture.compare import Comparison, compare_files
from lab.capture.pcapfile import CapturedSegment, read_segments

CHECKOUT_CAPTURES = Path(__file__).resolve().parents[2] / "captures"  # in a checkout of the repository
FIXED_ISNS = (0x10000000, 0x20000000, 0x30000000, 0x40000000)
TS_BASES = (100000, 200000, 300000, 400000)
FIRST_CLIENT_PORT = 40000
MOD = 2**32
_LINE = re.compile(r"^(?P<path>\S+?):(?P<line>\d+) ")


def nominal_times(script: Script) -> dict[int, float]:
    """Each line's time on the script's own timeline: ranges at their low end, ``*`` with the line before."""
    times, previous = {}, 0.0
    for event in script.events:
        timing = event.timing
        if not timing.any_time:
            previous = previous + timing.start if timing.relative else timing.start
        times[event.line] = previous
    return times


def sysctls_in_force(script: Script, defaults: dict[str, str]) -> dict[str, str]:
    """A fresh namespace's TCP sysctls, with the script's sysctl lines applied in order."""
    values = dict(defaults)
    for event in script.events:
        if isinstance(event, CommandEvent) and event.sysctls:
            values.update(event.sysctls)
    return values


class Normaliser:
    """Maps one capture's run-specific values onto fixed ones (see the module docstring)."""

    def __init__(self, script: Script, name: str):
        self.times = nominal_times(script)
        # A sender whose first segment is no SYN (a restarted peer's FIN) keeps the
        # script's own numbers: offline, numbers before a SYN read as absolute.
        self.script_seqs = {event.line: event.seq for event in script.events if isinstance(event, PacketEvent)}
        self.name = name
        self.endpoints: list[tuple[str, int]] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.ports: dict[tuple[str, int], int] = {}
        self.addresses: list[str] = []
        self.ts_mapped: dict[tuple[str, int], dict[int, int]] = {}
        self.last_time = 0.0

    def _endpoint(self, address: str, port: int) -> int:
        key = (address, port)
        if key not in self.endpoints:
            self.endpoints.append(key)
            self.ts_mapped[key] = {}
            self.ports[key] = port if port == SERVER_PORT else FIRST_CLIENT_PORT + sum(
                1 for other in self.endpoints[:-1] if other[1] != SERVER_PORT)
        if address not in self.addresses:
            self.addresses.append(address)
        return self.endpoints.index(key)

    def _seq(self, key: tuple[str, int], value: int) -> int:
        return (value - self.offsets.get(key, 0)) % MOD

    def comment(self, text: str) -> str:
        """``/abs/path/x.pkt:12 +0 > S. ...`` becomes ``x.pkt:12 +0 > S. ...`` (each coalesced part)."""
        return " + ".join(_LINE.sub(lambda m: f"{self.name}.pkt:{m['line']} ", part, count=1)
                          for part in text.split(" + "))

    def script_position(self, item: CapturedSegment) -> tuple[float, int]:
        """(nominal time, line) of the script line a packet matched."""
        match = _LINE.match(item.comment)
        line = int(match["line"]) if match else 0
        return self.times.get(line, 0.0), line

    def time_of(self, comment: str) -> float:
        match = _LINE.match(comment)
        if match:
            self.last_time = self.times.get(int(match["line"]), self.last_time)
        return self.last_time

    def packet(self, item: CapturedSegment):
        """The fixture's version of one captured packet (a new Scapy packet)."""
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        packet = item.packet.copy()
        segment = item.segment
        source, destination = (segment.src, segment.sport), (segment.dst, segment.dport)
        sender = self._endpoint(*source)
        self._endpoint(*destination)  # numbered in order of appearance
        if "S" in segment.flag_text and source not in self.offsets:
            self.offsets[source] = (segment.seq - FIXED_ISNS[sender % len(FIXED_ISNS)]) % MOD
        elif source not in self.offsets and (match := _LINE.match(item.comment)):
            self.offsets[source] = (segment.seq - self.script_seqs.get(int(match["line"]), segment.seq)) % MOD
        time = self.time_of(item.comment)
        tcp = packet[TCP]
        tcp.sport, tcp.dport = self.ports[source], self.ports[destination]
        tcp.seq = self._seq(source, segment.seq)
        tcp.ack = self._seq(destination, segment.ack) if "." in segment.flag_text else 0
        options = []
        for name, value in tcp.options:
            if name == "Timestamp":
                val, ecr = value
                mapped = TS_BASES[sender % len(TS_BASES)] + round(time * 1000)
                self.ts_mapped[source][val] = mapped
                value = (mapped, self.ts_mapped[destination].get(ecr, 0) if ecr else 0)
            elif name == "SAck":
                value = tuple(self._seq(destination, edge) for edge in value)
            options.append((name, value))
        tcp.options = options
        del tcp.chksum, tcp.dataofs
        if IP in packet:
            packet[IP].id = 0
            del packet[IP].chksum, packet[IP].len
        if IPv6 in packet:
            packet[IPv6].fl = 0
            del packet[IPv6].plen
        if Ether in packet:
            packet[Ether].src = f"02:00:00:00:00:{self.addresses.index(segment.src) + 1:02x}"
            packet[Ether].dst = f"02:00:00:00:00:{self.addresses.index(segment.dst) + 1:02x}"
        rebuilt = packet.__class__(bytes(packet))
        rebuilt.time = time
        rebuilt.comments = [self.comment(item.comment).encode()]
        if item.outbound is not None:
            rebuilt.direction = 2 if item.outbound else 1
        return rebuilt


def fixture_path(folder: Path, name: str, family: int) -> Path:
    return folder / (f"{name}.pcapng" if family == 4 else f"{name}-ipv6.pcapng")


def write_fixture(exercise: Exercise, script: Script, family: int, live: str, path: Path,
                  defaults: dict[str, str]) -> None:
    """Turn a passing run's capture ``live`` into the fixture at ``path``."""
    normaliser = Normaliser(script, exercise.name)
    # In script order: two kernels' segments sent at the same moment reach the
    # capture in either order (see either_order); the fixture must not depend on it.
    matched = sorted((item for item in read_segments(live) if item.comment), key=normaliser.script_position)
    sysctls = " ".join(f"{key}={value}" for key, value in sorted(sysctls_in_force(script, defaults).items()))
    # compare.ENVIRONMENT reads the tcplab version and the kernel release back: keep the two in step.
    comment = (f"tcplab {__version__} fixture of exercise {exercise.name} ({exercise.mode} mode, IPv{family}); "
               f"kernel: Linux {platform.release()}; sysctls in force: {sysctls}; "
               "times are the script's timeline; ISNs, TS values, client ports, MACs, IPv4 IDs and IPv6 "
               "flow labels are mapped onto fixed values; only segments matched by script lines are kept")
    with pcapng_writer(str(path), comment, f"tcplab {__version__}") as writer:
        writer.linktype = 1
        for item in matched:
            writer.write(normaliser.packet(item))


def regenerate(chosen: list[Exercise], families: tuple[int, ...], folder: Path, defaults: dict[str, str],
               jobs: int | None, check: bool = False) -> Iterator[tuple[Path, RunResult, Comparison | None]]:
    """Run the exercises (``jobs`` at once), make a fixture of each passing run and compare it with the one
    in ``folder``; yield (its path there, the outcome, the comparison: None for a failing run).

    A fixture replaces the one in ``folder`` only when its segments, script
    lines or sysctls differ (see compare.py): one that differs only in the
    kernel build or tcplab version is left as it is. ``check``: replace none.
    """
    work, runs = [], {}  # runs: (script path, family) -> (exercise, script, its live capture)
    for exercise in chosen:
        script = exercise.runnable()
        for family in families:
            handle, live = tempfile.mkstemp(prefix="tcplab-regen-", suffix=".pcapng")
            os.close(handle)
            work.append((script, family, Settings(pcap=live)))
            runs[(script.path, family)] = (exercise, script, live)
    kept = set()  # a failing run's capture stays, for its report
    try:
        with tempfile.TemporaryDirectory(prefix="tcplab-fixtures-") as staging:
            # A run made again (its first try no verdict on the kernel) comes last: matched by script and family.
            for outcome in run_many(work, jobs, again_uncrowded=True):
                exercise, script, live = runs[(outcome.path, outcome.family)]
                path = fixture_path(folder, exercise.name, outcome.family)
                comparison = None
                if outcome.passed:
                    fresh = Path(staging) / path.name
                    write_fixture(exercise, script, outcome.family, live, fresh, defaults)
                    comparison = compare_files(path, fresh)
                    if comparison.changed and not check:
                        folder.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(fresh, path)
                else:
                    kept.add(live)
                yield path, outcome, comparison
    finally:
        for *_, live in runs.values():
            if live not in kept:
                os.unlink(live)
