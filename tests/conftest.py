"""Shared fixtures: every test runs against the real kernel in real namespaces.

As root the suite uses the machine's /run/netns; as a plain user it first moves
itself into a user namespace of its own (tcplab's rootless mode), before any
thread exists. After each test no namespace of the lab may be left over.
"""

from __future__ import annotations

import os

import pytest

from lab.privileges import ensure_lab_privileges

ensure_lab_privileges()

from netns.names import parse_netns  # noqa: E402  (after the privilege switch)
from netns.namespace import listed, remove  # noqa: E402


def _ours() -> set[str]:
    """tcplab namespaces of this process or of dead ones; another live tcplab's are not ours to judge."""
    names = set()
    for name in listed():
        parsed = parse_netns(name)
        if parsed is not None and (parsed[0].pid == os.getpid() or not parsed[0].is_alive()):
            names.add(name)
    return names


@pytest.fixture(autouse=True)
def no_leftover_namespaces():
    """Fail a test that leaves a tcplab namespace behind (and remove it)."""
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
