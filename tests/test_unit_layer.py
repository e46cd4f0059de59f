"""The unit layer (tests/unit) needs no root, no namespaces and no kernel (tests/unit/test_rooms.py runs the
offline path without pyroute2).

Checked the way a user without privileges meets them: as uid 65534 where
new user namespaces are refused (tests/block_userns.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import BLOCK_USERNS, NOBODY

ROOT = Path(__file__).resolve().parents[1]


def as_nobody_without_userns(*command: str) -> subprocess.CompletedProcess:
    caps = "+dac_read_search"
    drop = [sys.executable, BLOCK_USERNS, "/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
            "--clear-groups", f"--inh-caps={caps}", f"--ambient-caps={caps}"]
    return subprocess.run([*drop, *command], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_unit_tests_pass_unprivileged_where_user_namespaces_are_refused():
    done = as_nobody_without_userns(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
