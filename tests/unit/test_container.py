"""lab/live/container.py's readings of a process's own view, on made-up /proc texts (no privileges)."""

from __future__ import annotations

from lab.live import container

MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw
70 22 0:21 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
71 22 0:22 / /sys rw,nosuid - sysfs sysfs rw
"""


def test_a_read_only_proc_sys_is_seen_and_a_writable_one_is_not():
    assert container.read_only("/proc/sys", MOUNTINFO)
    assert not container.read_only("/sys", MOUNTINFO)
    assert not container.read_only("/proc/sys", MOUNTINFO.replace(" ro,", " rw,"))
    assert not container.read_only("/run", MOUNTINFO)  # not a mount point of its own


def test_the_last_mount_on_a_point_decides():
    remounted = MOUNTINFO + "80 70 0:21 /sys /proc/sys rw,relatime - proc proc rw\n"
    assert not container.read_only("/proc/sys", remounted)


def test_missing_capabilities_are_named_from_capeff():
    default_docker = {"CapEff": "00000000a80425fb"}  # Docker's default set: NET_RAW, no SYS_ADMIN or NET_ADMIN
    assert container.missing_capabilities(default_docker) == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert container.missing_capabilities({"CapEff": "000001ffffffffff"}) == []
    assert container.missing_capabilities({"CapEff": "0000000000201000"}) == ["CAP_NET_RAW"]


def test_the_grant_names_exactly_the_missing_capabilities():
    grant = container.capability_grant(["CAP_SYS_ADMIN", "CAP_NET_RAW"])
    assert "--cap-add=SYS_ADMIN --cap-add=NET_RAW;" in grant and "capabilities.add: [SYS_ADMIN, NET_RAW]" in grant


def test_the_runtime_is_read_from_its_marks(tmp_path, monkeypatch):
    for name in ("KUBERNETES_SERVICE_HOST", "container"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/\n")
    assert container.engine(tmp_path) is None
    (tmp_path / "proc/1/cgroup").write_text("0::/kubepods/burstable/pod1/abc\n")
    assert container.engine(tmp_path) == "kubernetes"
    (tmp_path / ".dockerenv").touch()
    assert container.engine(tmp_path) == "docker"
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").touch()
    assert container.engine(tmp_path) == "podman"
    (tmp_path / "proc/cmdline").write_text("console=ttyS0 virtme_initmount0=/ virtme.exec=...\n")
    assert container.engine(tmp_path) is None  # a virtme-ng guest (tcplab kernels run) sees the host's marks
