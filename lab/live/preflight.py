"""What a script must pass before any namespace exists: the checks ``tcplab run`` makes on every file first.

Apart from the runner, which checks each script again as its run begins:
``tcplab run`` and ``tcplab selftests`` check every file before the first
run, and tests check scripts without running them.
"""

from __future__ import annotations

from lab.errors import BadInput
from lab.judge.code import check_block, code_names
from lab.live.kernelapp import validate_syscall
from lab.script.events import (
    CodeEvent,
    CommandEvent,
    LinkEvent,
    LossEvent,
    Script,
    SyscallEvent,
)
from lab.script.settings import Settings, check_options


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def preflight(script: Script, settings: Settings) -> None:
    """Reject what cannot run before any namespace exists: shell without the flag, bad syscalls, bad code,
    option lines with values tcplab cannot use."""
    check_options(script)
    assignable = code_names(script)
    for event in script.events:
        where = f"{script.path}:{event.line}"
        if isinstance(event, CommandEvent) and event.sysctls is None and not settings.allow_shell:
            raise BadInput(f"{where}: shell command `{_one_line(event.command)}` needs --allow-shell "
                           "(scripts are untrusted: only `sysctl -q net.x=y` lines run without it)")
        if isinstance(event, CommandEvent) and event.sysctls:
            for key, _ in event.sysctls:
                if not key.startswith("net."):
                    raise BadInput(f"{where}: sysctl {key}: only namespaced net.* settings can be changed")
        if isinstance(event, SyscallEvent):
            validate_syscall(event, script.path)
        if isinstance(event, CodeEvent):
            check_block(event.code, where, assignable)
        if isinstance(event, (LinkEvent, LossEvent)) and not script.observe:
            raise BadInput(f"{where}: a link line shapes the link between two real endpoints: observe mode only "
                           "(name the endpoints: client > ..., server > ...)")
