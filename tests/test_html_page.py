"""`tcplab run --html` and `--animated-svg` from a real run, opened in headless Chromium.

Chromium (Debian's ``chromium``, installed by ``make test`` as root) loads
the page from disk with the network off; the page plays itself when its
address ends in ``#play``, and ``--virtual-time-budget`` lets the animation
run to its end before the DOM is dumped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from helpers import tcplab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it as root)")


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    page, animated = folder / "run.html", folder / "run-animated.svg"
    result = tcplab("run", "close-4-segments", "--ip-version", "4", "--html", str(page), "--animated-svg",
                    str(animated), "--no-ladder")
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, page, animated


def test_the_page_renders_and_plays_to_the_end(drawings, tmp_path):
    folder, page, _ = drawings
    assert (folder / "run.pcapng").exists() and 'href="run.pcapng"' in page.read_text()
    frames = json.loads(re.search(r'id="frames">(.*?)</script>', page.read_text(), re.S)[1])
    result = chromium(tmp_path, "--virtual-time-budget=120000", "--dump-dom", f"file://{page}#play")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert f'data-frames="{len(frames)}"' in dom, "the page's script did not run"
    rows = re.findall(r'<g class="row([^"]*)" id="row-(\d+)"', dom)
    assert len(rows) == len(frames) and all("shown" in classes for classes, _ in rows)
    last_node = [frame["node"] for frame in frames if frame.get("endpoint") == "client"][-1]
    assert re.search(rf'id="{last_node}" class="node[^"]*\bnow\b', dom), "the diagram did not follow the run"


def test_the_page_and_the_animated_svg_draw_something(drawings, tmp_path):
    _, page, animated = drawings
    for source, shot in ((page, tmp_path / "page.png"), (animated, tmp_path / "animated.png")):
        result = chromium(tmp_path, "--window-size=1200,900", f"--screenshot={shot}", f"file://{source}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.stat().st_size > 10_000  # a white page is a few hundred bytes
