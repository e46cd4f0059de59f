"""A batch keeps a run's topology for its next run: the state a run leaves must be gone before the next starts.

tests/scripts/leaves_state.pkt leaves a changed sysctl, a TIME_WAIT socket and
saved TCP metrics in its kernel namespace. Each test runs it in a batch
(``keeping()``), then looks at the topology kept for the next run with the
kernel's own interfaces (sock_diag, /proc/sys, the tcp_metrics genetlink
family, rtnetlink's neighbours). With one step of the reset switched off,
the same look must find what that step leaves.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from lab.live import kept
from lab.live.batch import run_many
from lab.live.runner import run_script
from lab.script.parser import parse_file
from lab.script.settings import Settings
from netns import inside, read_sysctl
from netns import topology as topology_module
from netns.sockets import tcp_sockets_left
from netns.tcp_metrics import tcp_metrics_entries

# The state a run leaves is looked at after a whole run: a run the lab was late for (other tests crowding the
# machine) would stop early and leave less. The module runs in make test's uncrowded pass.
pytestmark = pytest.mark.alone

LEAVES_STATE = str(Path(__file__).with_name("scripts") / "leaves_state.pkt")
NUD_STALE = 0x04
# INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED (not NOARP multicast ones, not PERMANENT), from
# linux/neighbour.h: written here again on purpose, as a reader with the product's mask could not catch a wrong one.
NUD_LEARNT = 0x3F
FIN_TIMEOUT = "net.ipv4.tcp_fin_timeout"
SOCK_DESTROY_ENDS_TIME_WAIT = tuple(map(int, platform.release().split(".")[:2])) >= (6, 11)


def _learnt_neighbours(ns: str) -> list:
    with inside(ns), IPRoute() as ipr:
        return [entry for entry in ipr.get_neighbours() if entry["state"] & NUD_LEARNT]


def leftovers(topology, defaults: dict[str, str]) -> list[str]:
    """What of a run's kernel state is still in ``topology``: each item names what it compared."""
    found = []
    for ns in topology.namespaces:
        if sockets := tcp_sockets_left(ns):
            found.append(f"{ns}: {sockets} TCP sockets")
        if entries := tcp_metrics_entries(ns):
            found.append(f"{ns}: {entries} tcp_metrics entries")
        if learnt := _learnt_neighbours(ns):
            found.append(f"{ns}: {len(learnt)} learnt neighbour entries")
    for key, value in defaults.items():
        if (now := read_sysctl(topology.kernel_ns, key)) != value:
            found.append(f"{key} = {now}, built as {value}")
    return found


def _add_learnt_neighbour(topology) -> None:
    """A neighbour entry as the kernel makes one itself (no drive-mode script makes one)."""
    with inside(topology.kernel_ns), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=topology.kernel_if)[0]
        ipr.neigh("add", dst="198.18.0.99", lladdr="02:00:00:00:00:99", ifindex=index, state=NUD_STALE)


@pytest.fixture
def batch(monkeypatch):
    """A batch that keeps topologies; ``run(family, path, settings)`` runs a script in it and returns the
    topologies kept after it. Before each reset, the run's state is checked to be there (else the test
    would prove nothing) and a learnt neighbour entry is added."""
    original_reset = topology_module.Topology.reset

    def reset_after_a_look(topology):
        _add_learnt_neighbour(topology)
        assert tcp_sockets_left(topology.kernel_ns) >= 1, "the run left a TIME_WAIT socket"
        assert tcp_metrics_entries(topology.kernel_ns) >= 1, "the kernel saved the connection's metrics"
        assert read_sysctl(topology.kernel_ns, FIN_TIMEOUT) == "7"
        return original_reset(topology)

    monkeypatch.setattr(topology_module.Topology, "reset", reset_after_a_look)

    def run(family: int = 4, path: str = LEAVES_STATE, settings: Settings = Settings()):
        result = run_script(parse_file(path), family, settings)
        assert result.passed, result.failure
        return kept.kept_now()

    with kept.keeping():
        yield run


@pytest.mark.skipif(not SOCK_DESTROY_ENDS_TIME_WAIT, reason="SOCK_DESTROY ends TIME_WAIT since Linux 6.11")
def test_the_next_run_finds_its_topology_as_new(batch):
    from netns import VethTopology

    with VethTopology() as new:
        defaults = {FIN_TIMEOUT: read_sysctl(new.kernel_ns, FIN_TIMEOUT)}
    assert defaults[FIN_TIMEOUT] != "7"
    (kept_topology,) = batch()
    assert leftovers(kept_topology, defaults) == []
    # The next run takes it over (the same namespace), and leaves it as new again. (An IPv6 run would take
    # one of its own kind: the drive port's IPv6 path MTU is 1520.)
    (again,) = batch(4)
    assert again.kernel_ns == kept_topology.kernel_ns
    assert leftovers(again, defaults) == []


@pytest.mark.skipif(not SOCK_DESTROY_ENDS_TIME_WAIT, reason="SOCK_DESTROY ends TIME_WAIT since Linux 6.11")
@pytest.mark.parametrize(("step", "left"), [
    ("_restore_sysctls", "net.ipv4.tcp_fin_timeout = 7"),
    ("flush_tcp_metrics", "tcp_metrics entries"),
    ("_forget_learnt_neighbours", "learnt neighbour entries"),
])
def test_the_look_finds_what_a_reset_without_one_step_leaves(batch, monkeypatch, step, left):
    from netns import VethTopology

    with VethTopology() as new:
        defaults = {FIN_TIMEOUT: read_sysctl(new.kernel_ns, FIN_TIMEOUT)}
    if step == "flush_tcp_metrics":
        monkeypatch.setattr(topology_module, step, lambda ns: None)
    else:
        monkeypatch.setattr(topology_module.Topology, step, lambda *args: None)
    (kept_topology,) = batch()
    assert any(left in item for item in leftovers(kept_topology, defaults)), leftovers(kept_topology, defaults)


def test_a_topology_whose_sockets_outlive_the_reset_is_removed_not_kept(batch, monkeypatch):
    """Sockets SOCK_DESTROY did not end (a TIME_WAIT socket before 6.11): the next run builds its own."""
    monkeypatch.setattr(topology_module, "abort_tcp_sockets", lambda ns: None)
    assert batch() == []


def test_a_run_that_changed_what_no_reset_undoes_removes_its_topology(batch, tmp_path):
    """A shell line may have done anything: its topology is not kept."""
    script = tmp_path / "with_shell.pkt"
    script.write_text(Path(LEAVES_STATE).read_text() + "   +0 `true`\n")
    assert batch(4, str(script), Settings(allow_shell=True)) == []


def test_a_reset_the_kernel_refuses_costs_the_next_run_a_topology_of_its_own(batch, monkeypatch):
    """An older kernel may lack what a reset uses: the run's verdict stands, its topology is removed."""
    from netns.netlink import NetlinkRefused

    def refused(ns):
        raise NetlinkRefused(2, "flush tcp_metrics: No such file or directory")

    monkeypatch.setattr(topology_module, "flush_tcp_metrics", refused)
    assert batch() == []


def test_a_batch_removes_what_it_kept_at_its_end():
    script = parse_file(LEAVES_STATE)
    results = list(run_many([(script, 4, Settings()), (script, 6, Settings())], workers=1))
    assert all(result.passed for result in results)
    assert kept.kept_now() == []  # and the fixture no_leftover_namespaces finds no namespace left


def test_a_topology_built_ahead_is_taken_over_by_the_first_run_of_its_kind(monkeypatch):
    """``tcplab run`` of one script builds its topology while the engine imports: the run uses that one (one
    build in all, the one ahead) and removes it when it ends, as a run removes its own."""
    from lab.live.topologies import topology_for
    from netns.namespace import listed

    builds = []
    original_build = topology_module.VethTopology._build

    def counted(topology):
        builds.append(topology.kernel_ns)
        original_build(topology)

    monkeypatch.setattr(topology_module.VethTopology, "_build", counted)
    ahead = topology_for(False, 4, Settings().for_script(parse_file(LEAVES_STATE)))
    with kept.built_ahead(ahead):
        result = run_script(parse_file(LEAVES_STATE), 4, Settings())
        assert not {ahead.kernel_ns, ahead.lab_ns} & set(listed()), "the run removed it at its end"
    assert result.passed, result.failure
    assert builds == [ahead.kernel_ns]


def test_a_topology_built_ahead_for_another_kind_is_removed_unused():
    from lab.live.topologies import topology_for
    from netns.namespace import listed

    ahead = topology_for(False, 6, Settings().for_script(parse_file(LEAVES_STATE)))  # IPv6: path MTU 1520
    with kept.built_ahead(ahead):
        result = run_script(parse_file(LEAVES_STATE), 4, Settings())
        assert set(ahead.namespaces) <= set(listed()) and ahead.namespaces, "built, and not taken by an IPv4 run"
    assert result.passed, result.failure
    assert not {ahead.kernel_ns, ahead.lab_ns} & set(listed())
