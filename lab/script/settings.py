"""How scripts run: one table of the settings a script's option lines and the CLI's flags both set.

As in packetdrill's config.c, a script's option lines (``--tolerance_usecs=8000``)
are applied first and command-line flags on top: a value given on the command
line wins. Option lines tcplab does not act on are named in a note, never
silently dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lab.errors import BadInput
from lab.script.events import Script


@dataclass(frozen=True)
class OptionLine:
    """One option a script line (``--name=value``) or a flag may set."""

    name: str
    kind: type  # int, float or str
    default: object
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None  # the lowest and highest number allowed
    flag_help: str = ""  # set: a command-line flag of run, verify and selftests sets it too, over the line


# The options tcplab acts on; the single source for option lines and their flags.
OPTIONS = (
    OptionLine("tolerance_usecs", int, 4000,  # packetdrill's default floor, 4 ms
               flag_help="Timing tolerance floor in microseconds (default 4000, or the script's option line)."),
    OptionLine("tolerance_percent", float, 12.5,  # ... and its share of the gap between events
               flag_help="Timing tolerance as a percentage of the gap between events (default 12.5, or the "
                         "script's option line)."),
    OptionLine("server", str, None, ("unreachable",)),  # observe mode: connect() to an address nobody owns
    OptionLine("ip_version", str, None, ("ipv4", "ipv6")),  # restricts the families (lab/tcp/families.py)
    OptionLine("mss", int, 0),  # drive mode: longer injected segments go out as GSO super-segments of this size
    OptionLine("tcp_ts_tick_usecs", int, 0),  # the kernel's TS val must advance by one per this many us
    OptionLine("mtu", int, None, bounds=(576, 9000)),  # drive mode: the path MTU (default 1500, IPv6 1520)
    OptionLine("bind_port", int, None, bounds=(1, 65535)),  # what bind(fd, ..., ...) takes (default 8080)
    OptionLine("connect_port", int, None, bounds=(1, 65535)),  # the lab's port, where connect() goes
)
BY_NAME = {option.name: option for option in OPTIONS}
SLOW_TOLERANCE_USECS = 100_000  # --slow: timing is reported, judged only this coarsely (emulation's lab is ~10 ms late)


@dataclass
class Settings:
    """How to run scripts. Tolerances left None come from the script's option
    lines, else packetdrill's defaults; a value given here (a CLI flag) wins."""

    tolerance_usecs: int | None = None
    tolerance_percent: float | None = None
    allow_shell: bool = False
    absolute: bool = False
    pcap: str | None = None  # where to write the capture; None: a temporary file kept only for a failure
    loopback: bool = False  # observe mode: both endpoints in one namespace on 127.0.0.1 / ::1
    lab_isn: int | None = None  # drive mode: the lab's ISN (tcplab demo --isn); None: random per run
    # A batch with more workers than CPUs: timelines neither keep to one CPU nor start on a kernel tick, as
    # real-time workers held together would wait for one another (lab/live/punctual.py).
    crowded: bool = False
    # A slow machine (an emulated guest kernel, a loaded CI box): content judged fully, a wide tolerance floor
    # for timing, and the lines outside the script's own tolerance reported in a note (slow_machine_note).
    slow: bool = False
    options: dict = dataclasses.field(default_factory=dict)  # every option's value for one script (for_script)

    def for_script(self, script: Script) -> Settings:
        """These settings for ``script``: every option resolved once, before anything runs (its option line
        or its default, a flag over both), bad values refused as bad input."""
        check_options(script)
        options = {option.name: option_value(script, option.name) for option in OPTIONS if option.name != "ip_version"}
        for name in ("tolerance_usecs", "tolerance_percent"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        options["script_tolerance_usecs"] = options["tolerance_usecs"]  # what the deviations note measures by
        if self.slow and self.tolerance_usecs is None:
            options["tolerance_usecs"] = max(options["tolerance_usecs"], SLOW_TOLERANCE_USECS)
        return dataclasses.replace(self, options=options, **{name: options[name] for name in
                                                            ("tolerance_usecs", "tolerance_percent")})

    def option(self, name: str):
        """A resolved option's value (``for_script`` first)."""
        return self.options[name]


def option_value(script: Script, name: str):
    """An option line's value in its type, or the option's default; bad values are bad input."""
    option = BY_NAME[name]
    value = script.options.get(name)
    if value is None:
        return option.default
    if option.choices and value not in option.choices:
        raise BadInput(f"{script.path}: option --{name}={value}: the values are {' or '.join(option.choices)}")
    try:
        number = option.kind(value)
    except ValueError:
        raise BadInput(f"{script.path}: option --{name}={value}: not a number") from None
    if option.bounds and not option.bounds[0] <= number <= option.bounds[1]:
        raise BadInput(f"{script.path}: option --{name}={value}: a number from {option.bounds[0]} "
                       f"to {option.bounds[1]}")
    return number


def check_options(script: Script) -> None:
    """Every option line tcplab acts on has a usable value (before anything runs)."""
    for name in script.options:
        if name in BY_NAME and name != "ip_version":  # ip_version: lab/tcp/families.py says what it accepts
            option_value(script, name)


def ignored_options(script: Script) -> list[str]:
    """Notes for option lines tcplab does not act on (packetdrill's --mss=, --tcp_ts_tick_usecs=, ...)."""
    return [f"option line --{name}={value} is not supported by tcplab and was ignored"
            for name, value in script.options.items() if name not in BY_NAME]
