"""lab/live/kernels.py's pure parts: which Debian package a release means, and the command that boots it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import BadInput
from lab.live import kernels

NAMES = ["linux-image-6.12-amd64", "linux-image-6.12.117+deb12-amd64", "linux-image-6.12.118+deb12-amd64",
         "linux-image-6.12.118+deb12-cloud-amd64", "linux-image-6.12.118+deb12-rt-amd64",
         "linux-image-6.12.118+deb12-amd64-dbg", "linux-image-6.1.0-9-amd64", "linux-image-6.1.0-57-amd64",
         "linux-image-6.1.0-56-amd64", "linux-image-amd64"]


def test_a_release_means_its_newest_generic_image_not_the_meta_package_cloud_or_rt():
    assert kernels.newest_package("6.12", NAMES) == "linux-image-6.12.118+deb12-amd64"
    assert kernels.newest_package("6.1", NAMES) == "linux-image-6.1.0-57-amd64"  # 57 > 56 > 9, and not 6.12
    assert kernels.newest_package("6.12.117", NAMES) == "linux-image-6.12.117+deb12-amd64"


def test_a_release_that_is_not_offered_or_not_a_release_is_bad_input():
    with pytest.raises(BadInput, match="no Debian kernel image for 5.10"):
        kernels.newest_package("5.10", NAMES)
    with pytest.raises(BadInput, match="give it as 6.12"):
        kernels.newest_package("latest; rm -rf /", NAMES)


def test_an_emulated_guest_runs_the_same_tcplab_with_slow_and_loads_the_loss_modules():
    kernel = kernels.Kernel("6.12.118+deb12-amd64", Path("/k/boot/vmlinuz-6.12.118+deb12-amd64"), Path("/k/m"))
    command = kernels.guest_command(kernel, ["run", "--all", "--json"], kvm=False, cpus=2, memory="2G")
    assert command[:4] == ["vng", "-r", "/k/boot/vmlinuz-6.12.118+deb12-amd64", "--disable-kvm"]
    inside = command[-1]
    assert "modprobe -a nf_tables" in inside and inside.endswith("tcplab run --slow --all --json")
    with_kvm = kernels.guest_command(kernel, ["run", "--all"], kvm=True, cpus=2, memory="2G")
    assert "--disable-kvm" not in with_kvm and with_kvm[-1].endswith("tcplab run --all")


def test_the_cli_passes_the_tcplab_arguments_after_the_double_dash_with_slow(monkeypatch):
    from click.testing import CliRunner

    from lab.cli import main

    booted = []
    kernel = kernels.Kernel("6.1.0-57-amd64", Path("/k/boot/vmlinuz-6.1.0-57-amd64"), Path("/k/m"))
    monkeypatch.setattr(kernels, "missing_tools", lambda: [])
    monkeypatch.setattr(kernels, "resolve", lambda name: kernel)
    monkeypatch.setattr(kernels, "boot", lambda chosen, command: booted.append(command) or 0)
    result = CliRunner().invoke(main, ["kernels", "run", "6.1", "--", "run", "--all", "--json"])
    assert result.exit_code == 0, result.output
    assert booted[0][-1].endswith("tcplab run --slow --all --json")
    assert "emulated, no KVM: runs get --slow" in result.output


def test_the_selftests_matrix_puts_the_pairs_that_differ_between_releases_first(tmp_path):
    import json

    from lab.views import matrix

    def entry(script, family, kernel, result, reason=""):
        return {"script": script, "family": family, "kernel": kernel, "result": result, "reason": reason}

    (tmp_path / "a.json").write_text(json.dumps([entry("tcp_a.pkt", 4, "6.18.44", "pass"),
                                                 entry("tcp_b.pkt", 4, "6.18.44", "pass")]))
    (tmp_path / "b.json").write_text(json.dumps([entry("tcp_a.pkt", 4, "6.12.118", "pass"),
                                                 entry("tcp_b.pkt", 4, "6.12.118", "fail", "tcp_b.pkt:3: no such sysctl")]))
    text = matrix.markdown(matrix.read((str(tmp_path / "a.json"), str(tmp_path / "b.json"))))
    assert text.startswith("2 (script, family) pairs; 1 differ between releases. 6.12.118: 1 pass · 6.18.44: 2 pass.")
    rows = [line for line in text.splitlines() if line.startswith("| tcp_")]
    assert rows == ["| tcp_b.pkt | ipv4 | fail | pass |", "| tcp_a.pkt | ipv4 | pass | pass |"]
    assert "- tcp_b.pkt ipv4, 6.12.118: tcp_b.pkt:3: no such sysctl" in text
    with pytest.raises(BadInput, match="not the JSON of `tcplab selftests --json`"):
        (tmp_path / "c.json").write_text('[{"script": "x"}]')
        matrix.read((str(tmp_path / "c.json"),))


def test_an_emulated_guest_runs_the_selftests_as_a_slow_machine():
    kernel = kernels.Kernel("6.12.118+deb12-amd64", Path("/k/boot/vmlinuz-6.12.118+deb12-amd64"), Path("/k/m"))
    inside = kernels.guest_command(kernel, ["selftests", "/suite", "--json"], kvm=False, cpus=2, memory="2G")[-1]
    assert inside.endswith("tcplab selftests --slow /suite --json")
