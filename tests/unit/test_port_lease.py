"""Port leases (lab/live/port_lease.py): runs at once, in any processes, never trace the same ports; a lease
ends with its block or its process. Two blocks only here, so that a lease shared by mistake would show."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.live import port_lease
from netns.addresses import LEASED_PORTS

OTHER_PROCESS = ("import sys\nfrom lab.live import port_lease as lease\n"
                 "lease.LEASES, lease.BLOCKS = sys.argv[1], 2\n"
                 "with lease.leased_ports() as ports:\n    print(ports.start)\n")


@pytest.fixture
def two_blocks(tmp_path, monkeypatch):
    leases = str(tmp_path / "leases")
    monkeypatch.setattr(port_lease, "LEASES", leases)
    monkeypatch.setattr(port_lease, "BLOCKS", 2)
    monkeypatch.setattr(port_lease, "_file", None)
    yield leases
    if port_lease._file is not None:
        os.close(port_lease._file)


def other_process_lease(leases: str) -> int:
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, leases], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_leased_block_is_no_other_process_s_until_it_ends(two_blocks):
    with port_lease.leased_ports() as mine:
        assert len(mine) == port_lease.BLOCK and mine.start in LEASED_PORTS and mine.stop - 1 in LEASED_PORTS
        assert {other_process_lease(two_blocks) for _ in range(6)} == {mine.start + port_lease.BLOCK * (
            1 if mine.start == LEASED_PORTS.start else -1)}
    # Ended: the other process may take it now (each of the 30 starts from one of the two at random).
    assert mine.start in {other_process_lease(two_blocks) for _ in range(30)}


def test_one_process_never_holds_a_block_twice(two_blocks):
    with port_lease.leased_ports() as first, port_lease.leased_ports() as second:
        assert first != second
