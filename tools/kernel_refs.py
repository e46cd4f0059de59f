"""Check lab/course/kernel_functions.toml against Linux source releases: is every FILE:FUNCTION defined there?

``python -m tools.kernel_refs SOURCE ...`` takes Linux source trees (folders)
or Debian's linux-source-X.Y packages (.deb files, as ``apt-get download
linux-source-6.12`` fetches them) and, for each, lists the pinned references
whose file does not define the function. With ``--kallsyms`` it also names the
pinned functions that the running kernel has no symbol for (static functions the
compiler inlined, or names that changed). Exit status 1 when a source lacks a
reference. ``make kernel-refs`` runs it on the Debian package bookworm offers.

The course cites where Linux decides each behaviour; this is the check that the
citations name real functions in the files they name, release by release.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from lab.course.claims import pinned_functions


def defines(source: str, function: str) -> bool:
    """Whether C ``source`` has a definition (not a prototype, not a call) of ``function``.

    A definition starts at the beginning of a line (a return type may precede the
    name on that line) and its parameter list is followed by ``{``, not ``;``.
    """
    head = re.compile(rf"^(?![ \t#])[^;{{}}=()\n]*?\b{re.escape(function)}\s*\(", re.MULTILINE)
    for found in head.finditer(source):
        depth, at = 1, found.end()
        while depth and at < len(source):
            depth += {"(": 1, ")": -1}.get(source[at], 0)
            at += 1
        rest = source[at:].lstrip()
        # attributes and annotations between ``)`` and ``{`` (``__releases(x)``) do not end the head
        while rest[:1] not in ("{", ";", "") and re.match(r"\w+(\([^)]*\))?\s*", rest):
            rest = rest[re.match(r"\w+(\([^)]*\))?\s*", rest).end():]
        if rest.startswith("{"):
            return True
    return False


def missing_in(sources: dict[str, str], references: set[str]) -> list[str]:
    """The references (FILE:FUNCTION) whose file is absent from ``sources`` or does not define the function."""
    return sorted(ref for ref in references
                  if not defines(sources.get(ref.partition(":")[0], ""), ref.partition(":")[2]))


def release_of(makefile: str) -> str:
    """``6.12.118`` from the top Makefile's VERSION, PATCHLEVEL and SUBLEVEL lines."""
    return ".".join(re.findall(r"^(?:VERSION|PATCHLEVEL|SUBLEVEL) = (\d+)", makefile, re.MULTILINE))


def read_sources(source: Path, paths: set[str]) -> tuple[str, dict[str, str]]:
    """(the release, {path: text}) for ``paths`` from a source tree or a Debian linux-source .deb."""
    if source.is_dir():
        makefile = source / "Makefile"
        release = (release_of(makefile.read_text(errors="replace")) if makefile.is_file() else "") or source.name
        return release, {path: (source / path).read_text(errors="replace")
                         for path in paths if (source / path).is_file()}
    package = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(source)], capture_output=True, check=True).stdout
    texts: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(package)) as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith(".tar.xz"))
        release = re.search(r"linux-source-([\d.]+)\.tar", inner_member.name).group(1)
        with tarfile.open(fileobj=outer.extractfile(inner_member), mode="r|xz") as inner:
            for member in inner:
                path = member.name.partition("/")[2]
                if path in paths:
                    texts[path] = inner.extractfile(member).read().decode(errors="replace")
                if path == "Makefile":
                    release = release_of(inner.extractfile(member).read().decode(errors="replace")) or release
    return release, texts


def kallsyms_lack(references: set[str], kallsyms: Path = Path("/proc/kallsyms")) -> list[str]:
    """The pinned functions the running kernel has no symbol for (a part the compiler split off, such as
    ``retransmits_timed_out.part.0``, counts as the function's symbol)."""
    symbols = {line.split()[2].split(".")[0] for line in kallsyms.read_text().splitlines() if len(line.split()) >= 3}
    return sorted(ref for ref in references if ref.partition(":")[2] not in symbols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="Linux source trees or linux-source .deb files")
    parser.add_argument("--kallsyms", action="store_true", help="also name pinned functions with no symbol here")
    arguments = parser.parse_args(argv)
    _release, references = pinned_functions()
    paths = {ref.partition(":")[0] for ref in references}
    failed = False
    for source in arguments.sources:
        release, texts = read_sources(source, paths)
        missing = missing_in(texts, references)
        print(f"Linux {release} ({source.name}): {len(references) - len(missing)} of {len(references)} "
              f"functions defined in the file cited" + (": missing " + ", ".join(missing) if missing else ""))
        failed |= bool(missing)
    if arguments.kallsyms:
        lack = kallsyms_lack(references)
        print(f"running kernel {Path('/proc/sys/kernel/osrelease').read_text().strip()}: "
              f"{len(references) - len(lack)} of {len(references)} are symbols"
              + (f"; no symbol (inlined or renamed): {', '.join(lack)}" if lack else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
