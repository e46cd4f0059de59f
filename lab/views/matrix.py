"""The selftests on several kernel releases: one table, a row per (script, family), a column per release.

``tcplab selftests --from A.json --from B.json`` reads what ``tcplab selftests
DIR --json`` wrote on each kernel (each result names its kernel) and shows
where the releases differ, the rows that differ first.
"""

from __future__ import annotations

import json

from lab.errors import BadInput


def read(paths: tuple[str, ...]) -> dict[str, dict[tuple[str, int], dict]]:
    """release -> (script, family) -> the result entry, from `selftests --json` files."""
    by_release: dict[str, dict[tuple[str, int], dict]] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                entries = json.load(handle)
            for entry in entries:
                by_release.setdefault(entry["kernel"], {})[(entry["script"], entry["family"])] = entry
        except OSError as error:
            raise BadInput(f"{path}: {error.strerror}; give a file `tcplab selftests DIR --json` wrote") from None
        except (ValueError, KeyError, TypeError) as error:
            raise BadInput(f"{path}: not the JSON of `tcplab selftests --json` with its kernel ({error}); "
                           "write it again with this tcplab") from None
    return by_release


def markdown(by_release: dict[str, dict[tuple[str, int], dict]]) -> str:
    """The matrix as Markdown: the pairs whose results differ between releases first, then the rest."""
    releases = sorted(by_release)
    pairs = sorted({pair for results in by_release.values() for pair in results})

    def cell(release: str, pair: tuple[str, int]) -> str:
        entry = by_release[release].get(pair)
        return "-" if entry is None else entry["result"]

    differing = [pair for pair in pairs if len({cell(release, pair) for release in releases}) > 1]
    head = ["| script | family | " + " | ".join(releases) + " |", "|---|---|" + "---|" * len(releases)]
    rows = [f"| {script} | ipv{family} | " + " | ".join(cell(release, (script, family)) for release in releases)
            + " |" for script, family in [*differing, *(pair for pair in pairs if pair not in differing)]]
    totals = " · ".join(f"{release}: {sum(cell(release, pair) == 'pass' for pair in pairs)} pass"
                        for release in releases)
    reasons = [f"- {script} ipv{family}, {release}: {by_release[release][(script, family)]['reason']}"
               for script, family in differing for release in releases
               if (script, family) in by_release[release] and by_release[release][(script, family)]["reason"]]
    return "\n".join([f"{len(pairs)} (script, family) pairs; {len(differing)} differ between releases. {totals}.",
                      "", *head, *rows, "", "Why the differing ones did not pass:", "", *reasons]) + "\n"
