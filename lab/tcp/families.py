"""The address families a script runs in: asked for on the command line, allowed by the script.

``--ip-version 4|6|both`` (CLI) or ``--tcplab-ip-version`` (pytest) asks;
packetdrill's option line ``--ip_version=ipv4|ipv6`` in a script restricts,
as in the kernel selftests, where some scripts are written for one family.
"""

from __future__ import annotations

from lab.errors import BadInput

FAMILIES = {"4": (4,), "6": (6,), "both": (4, 6)}
SCRIPT_FAMILIES = {"ipv4": (4,), "ipv6": (6,)}


def families_for(options: dict[str, str], path: str, asked: str) -> tuple[int, ...]:
    """The families to run a script in: those asked for that its ``--ip_version`` line allows."""
    value = options.get("ip_version")
    if value is None:
        return FAMILIES[asked]
    if value not in SCRIPT_FAMILIES:
        raise BadInput(f"{path}: option --ip_version={value}: tcplab runs ipv4 or ipv6 "
                       "(an IPv4-mapped IPv6 socket is not supported)")
    return tuple(family for family in FAMILIES[asked] if family in SCRIPT_FAMILIES[value])
