"""The pytest plugin, as a user meets it: .pkt files and a topology fixture in a tests folder.

pytest runs in a child process in a folder of its own, where the plugin
loads through its entry point (this suite turns it off for itself).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SCRIPTS

PYTHON_TEST = '''
import pytest

def test_fresh_namespace_defaults(tcplab_topology):
    assert tcplab_topology.sysctl("net.ipv4.tcp_fin_timeout") == "60"

@pytest.mark.parametrize("tcplab_topology", [{"sysctls": {"net.ipv4.tcp_fin_timeout": 7}}], indirect=True)
def test_shaped_topology(tcplab_topology):
    assert tcplab_topology.sysctl("net.ipv4.tcp_fin_timeout") == "7"
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(folder)],
                          cwd=folder, capture_output=True, text=True, timeout=120)


def test_pkt_files_and_the_topology_fixture(tmp_path):
    good = (SCRIPTS / "passive_open.pkt").read_text()
    (tmp_path / "passive_open.pkt").write_text(good)
    wrong = good.replace("> S. 0:0(0) ack 1 <", "> S. 0:0(0) ack 2 <")
    assert wrong != good
    (tmp_path / "wrong_ack.pkt").write_text(wrong)
    (tmp_path / "test_kernel.py").write_text(PYTHON_TEST)
    result = run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "2 failed, 4 passed" in result.stdout, result.stdout
    # passed items are not listed (a first try made again on a crowded machine is named in a warning only)
    assert "PASSED passive_open.pkt" not in result.stdout and "FAILED passive_open.pkt" not in result.stdout
    assert "FAILED wrong_ack.pkt::ipv4" in result.stdout and "FAILED wrong_ack.pkt::ipv6" in result.stdout
    assert "ack: expected 2, got 1" in result.stdout
    assert "Traceback" not in result.stdout


def test_one_family_and_a_syntax_error(tmp_path):
    (tmp_path / "passive_open.pkt").write_text((SCRIPTS / "passive_open.pkt").read_text())
    (tmp_path / "broken.pkt").write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < Q 0:0(0) win 1\n")
    result = run_pytest(tmp_path, "--tcplab-ip-version", "6", "--continue-on-collection-errors")
    assert result.returncode == 1, result.stdout  # pytest's "tests failed": the collection error counts
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "broken.pkt:2" in result.stdout


FIRST_TRY_LATE = '''
import lab.live.batch as batch
from lab.judge.trace import LAB_LATE, Failure, RunResult

real_run, tries = batch.run_any, []


def lab_late_on_the_first_try(script, family, settings):
    """A busy machine, simulated: the lab late on the first try; later tries run for real."""
    tries.append(family)
    if len(tries) == 1:
        return RunResult(script.path, family, Failure(4, "the lab began this line 6.0 ms late", LAB_LATE), None, 0.0)
    return real_run(script, family, settings)


batch.run_any = lab_late_on_the_first_try
'''


@pytest.mark.alone  # its second try is a real run that must pass: other tests' runs could make it late again
def test_a_pkt_test_that_passed_on_its_second_try_says_so(tmp_path):
    (tmp_path / "passive_open.pkt").write_text((SCRIPTS / "passive_open.pkt").read_text())
    (tmp_path / "conftest.py").write_text(FIRST_TRY_LATE)
    result = run_pytest(tmp_path, "--tcplab-ip-version", "4")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 warning" in result.stdout, result.stdout
    assert ("MadeAgain: passive_open.pkt (IPv4): made again uncrowded: on its first try the lab was late at line 4 "
            "(the lab began this line 6.0 ms late)") in result.stdout
