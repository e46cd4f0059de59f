"""pytest plugin: .pkt files in a tests folder become tests, and a topology fixture.

Installed with tcplab (entry point ``pytest11``), so users drop packetdrill-
dialect scripts beside their tests and ``pytest`` runs each one against the
kernel, IPv4 and IPv6 as separate items; a mismatch report (file:line,
expected, actual, differing fields) is the failure text. ``tcplab_topology``
gives Python tests a fresh veth topology of their own, removed afterwards;
parametrize it indirectly with a dict of VethTopology arguments (sysctls,
observe, mtu) to shape it.

Privileges are taken as the CLI takes them: root, or a user namespace of
the pytest process's own where unprivileged ones are allowed.
"""

from __future__ import annotations

import warnings

import pytest

from lab.tcp.families import FAMILIES


def pytest_addoption(parser) -> None:
    group = parser.getgroup("tcplab")
    group.addoption("--tcplab-ip-version", choices=sorted(FAMILIES), default="both",
                    help="address families to run each .pkt file in (default: both)")
    group.addoption("--tcplab-allow-shell", action="store_true",
                    help="let .pkt backtick lines run shell in the kernel namespace")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".pkt":
        return PktFile.from_parent(parent, path=file_path)
    return None


class MadeAgain(UserWarning):
    """A .pkt test's verdict is its second try's: the lab, not the kernel, was late on the first."""


class PktMismatch(Exception):
    """The kernel did not do what the script says; the report is the message."""


class PktFile(pytest.File):
    def collect(self):
        from lab.errors import LabError
        from lab.tcp.families import families_for
        from lab.script.parser import parse_file

        try:
            script = parse_file(str(self.path))
            families = families_for(script.options, str(self.path), self.config.getoption("tcplab_ip_version"))
        except LabError as error:
            raise self.CollectError(str(error)) from None
        for family in families:
            yield PktItem.from_parent(self, name=f"ipv{family}", script=script, family=family)


class PktItem(pytest.Item):
    def __init__(self, *, script, family: int, **kwargs):
        super().__init__(**kwargs)
        self.script, self.family = script, family

    def runtest(self) -> None:
        """One run, made again where the lab was late on its first try (as ``tcplab run`` does); a run made
        again says so in the warnings summary and, for JUnit XML, in the test's properties."""
        from lab.live.batch import run_many
        from lab.views.report import made_again, render_failure
        from lab.script.settings import Settings
        from lab.privileges import ensure_lab_privileges

        ensure_lab_privileges()
        settings = Settings(allow_shell=self.config.getoption("tcplab_allow_shell"))
        (result,) = run_many([(self.script, self.family, settings)], 1, finish=lambda result: result,
                             again_uncrowded=True)
        if result.first_try is not None:
            self.user_properties.append(("tcplab_made_again", made_again(result.first_try)))
            warnings.warn(MadeAgain(f"{self.path.name} (IPv{self.family}): {made_again(result.first_try)}"),
                          stacklevel=1)
        if not result.passed:
            raise PktMismatch(render_failure(result))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PktMismatch):
            return str(excinfo.value)
        from lab.errors import LabError

        if isinstance(excinfo.value, LabError):
            return f"tcplab: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"{self.path.name} (IPv{self.family})"


@pytest.fixture
def tcplab_topology(request):
    """A fresh veth topology (lab and kernel namespaces), removed after the test."""
    from lab.privileges import ensure_lab_privileges
    from netns import VethTopology

    ensure_lab_privileges()
    with VethTopology(**getattr(request, "param", {})) as topology:
        yield topology
