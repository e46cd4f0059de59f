"""Shared fixtures. Tests under tests/unit need no privileges and no kernel; every other test runs
against the real kernel in real namespaces.

When the session holds kernel tests, it first gets the lab's privileges: as
root the machine's /run/netns, as a plain user a user namespace of its own
(tcplab's rootless mode), before any thread exists. After each kernel test no
namespace of the lab may be left over.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# No example database: the unit layer runs as nobody, who cannot write one in the checkout.
settings.register_profile("tcplab", database=None)
settings.load_profile("tcplab")

UNIT = Path(__file__).with_name("unit")


def _is_unit(node) -> bool:
    return UNIT in Path(str(node.path)).parents


def pytest_collection_finish(session) -> None:
    if any(not _is_unit(item) for item in session.items):
        from lab.privileges import ensure_lab_privileges

        ensure_lab_privileges()


def _ours() -> set[str]:
    """tcplab namespaces of this process or of dead ones; another live tcplab's are not ours to judge."""
    from netns.names import parse_netns
    from netns.namespace import listed

    names = set()
    for name in listed():
        parsed = parse_netns(name)
        if parsed is not None and (parsed[0].pid == os.getpid() or not parsed[0].is_alive()):
            names.add(name)
    return names


@pytest.fixture(scope="session", autouse=True)
def captures_kept_under_pytests_own_temp(tmp_path_factory):
    """A failing run keeps its capture in a temporary file for its user to open. Tests fail runs on purpose
    (hundreds of them): theirs go under pytest's temporary folder, which pytest prunes, not into /tmp."""
    import tempfile

    folder = str(tmp_path_factory.mktemp("captures"))
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"], tempfile.tempdir = folder, None  # this process and the tcplab processes it starts
    yield
    if before is None:
        del os.environ["TMPDIR"]
    else:
        os.environ["TMPDIR"] = before
    tempfile.tempdir = None


@pytest.fixture(autouse=True)
def no_leftover_namespaces(request):
    """Fail a kernel test that leaves a tcplab namespace behind (and remove it)."""
    if _is_unit(request.node):
        yield
        return
    from netns.namespace import remove

    before = _ours()
    yield
    leftovers = _ours() - before
    for name in leftovers:
        remove(name)
    assert not leftovers, f"namespaces left behind: {sorted(leftovers)}"


@pytest.fixture(scope="session", autouse=True)
def captures_in_pytest_tmp(tmp_path_factory):
    """Failing runs keep their capture in a temporary file: put those where pytest cleans up."""
    import tempfile

    folder = str(tmp_path_factory.mktemp("failed-run-captures"))
    previous_dir, previous_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = folder
    os.environ["TMPDIR"] = folder
    yield
    tempfile.tempdir = previous_dir
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env


@dataclasses.dataclass(frozen=True)
class CatalogueRuns:
    runs: dict  # (name, loopback, family) -> its JSON entry
    exits: list  # the exit codes of the two commands
    recorded: Path  # what `tcplab run --all --json` printed


@pytest.fixture(scope="session")
def catalogue_runs(tmp_path_factory) -> CatalogueRuns:
    """What `make run` prints with --json: every exercise in both families, one batch of worker processes (a
    first try the lab was late for made again uncrowded); and the observe exercises again over loopback. Tests
    using it share the xdist group "batches": one worker runs it once, and no other batch runs beside it."""
    from helpers import tcplab

    from lab.course.catalogue import exercises

    observe = [exercise.name for exercise in exercises() if exercise.mode == "observe" and not exercise.experiment]
    runs, exits = {}, []
    recorded = tmp_path_factory.mktemp("catalogue") / "run-all.json"
    for loopback, chosen in ((False, ["--all"]), (True, observe)):
        result = tcplab("run", *chosen, *(["--loopback"] if loopback else []), "--json", timeout=300)
        if not loopback:
            recorded.write_text(result.stdout)
        runs.update({(entry["name"], loopback, entry["family"]): entry for entry in json.loads(result.stdout)})
        exits.append(result.returncode)
    return CatalogueRuns(runs, exits, recorded)
