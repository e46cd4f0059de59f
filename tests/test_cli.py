"""The command line: fast help, version, doctor, privileges and their errors."""

from __future__ import annotations

import subprocess
import sys

from helpers import as_nobody, in_unprivileged_container, tcplab

from lab import __version__


def test_help_does_not_import_scapy_or_pyroute2():
    probe = (
        "import sys\n"
        "from lab.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'pyroute2'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out and "demo" in out
    assert "HEAVY []" in out


def test_version():
    assert tcplab("--version").stdout.strip() == f"tcplab, version {__version__}"


def test_unknown_command_is_a_usage_error():
    result = tcplab("no-such-command")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_doctor_reports_a_fresh_namespace_defaults():
    result = tcplab("doctor")
    assert result.returncode == 0, result.stderr
    # Kernel defaults of a fresh namespace (include/net/tcp.h, net/ipv4/sysctl_net_ipv4.c).
    for line in ("tcp_keepalive_time = 7200", "tcp_keepalive_intvl = 75", "tcp_keepalive_probes = 9",
                 "tcp_syn_retries = 6", "tcp_synack_retries = 5", "tcp_fin_timeout = 60", "tcp_syncookies = 1"):
        assert line in result.stdout
    assert "tx-checksum-ip-generic off" in result.stdout
    assert "privileges  root" in result.stdout


def test_rootless_demo_as_nobody():
    """Rootless runs get no real-time scheduling: on a busy machine the lab may be late, which it must say
    (exit 4), never blame on the kernel."""
    result = as_nobody("demo")
    assert result.returncode in (0, 4), result.stdout + result.stderr
    if result.returncode == 0:
        assert "ESTABLISHED" in result.stdout and "LAST_ACK" in result.stdout
    else:
        assert "kind:     lab-late" in result.stdout and "the lab itself was late" in result.stderr


def test_rootless_doctor_as_nobody():
    result = as_nobody("doctor")
    assert result.returncode == 0, result.stderr
    assert "rootless (uid 65534" in result.stdout


def test_no_user_namespaces_exits_3_with_the_fix():
    for command in ("demo", "doctor"):
        result = as_nobody(command, block_userns=True)
        assert result.returncode == 3, result
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
        assert "sudo" in result.stderr and "user.max_user_namespaces" in result.stderr


def test_root_without_host_privileges_exits_3():
    result = in_unprivileged_container("demo")
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "cannot create network namespace" in result.stderr
