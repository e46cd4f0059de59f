"""`tcplab run --html` and `--animated-svg` from a real run, opened in headless Chromium.

Chromium (Debian's ``chromium``, installed by ``make test`` as root) loads
the page from disk with the network off; the page plays itself when its
address ends in ``#play``, and ``--virtual-time-budget`` lets the animation
run to its end before the DOM is dumped. The article's Chinese quote must
draw as Chinese: without a Chinese font it drew as empty boxes (tofu).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from helpers import tcplab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Each character of the quote drawn alone on a canvas in the quote's own font, compared with code points no font
# has: a character that draws the same pixels as they do is an empty box. The two must draw alike, or the
# comparison tells nothing.
GLYPH_CHECK = """<script>
const quote = document.querySelector('blockquote[lang="zh"]');
const style = getComputedStyle(quote);
const context = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
context.font = `${style.fontSize} ${style.fontFamily}`;
function pixels(text) {
  context.clearRect(0, 0, 64, 64);
  context.fillText(text, 16, 40);
  return context.getImageData(0, 0, 64, 64).data.join();
}
const missing = pixels('\\uE000');
document.body.dataset.glyphs = JSON.stringify({font: context.font, missingAlike: missing === pixels('\\u{10FFFD}'),
  boxes: [...quote.textContent].filter(c => c.trim() && pixels(c) === missing).join('')});
</script>"""

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
                    str(animated), "--no-ladder", "--lang", "en")  # an English page quotes the article in Chinese
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


def test_the_chinese_quote_draws_chinese_glyphs_not_empty_boxes(drawings, tmp_path):
    _, page, _ = drawings
    text = page.read_text(encoding="utf-8")
    assert '<blockquote lang="zh">' in text, "the page quotes no article"
    checked = tmp_path / "checked.html"
    checked.write_text(text.replace("</body></html>", GLYPH_CHECK + "</body></html>"), encoding="utf-8")
    result = chromium(tmp_path, "--dump-dom", f"file://{checked}")
    assert result.returncode == 0, result.stderr[-2000:]
    glyphs = json.loads(html.unescape(re.search(r'data-glyphs="([^"]*)"', result.stdout)[1]))
    assert glyphs["missingAlike"], f"U+E000 and U+10FFFD drew differently in {glyphs['font']}: no box to compare with"
    assert not glyphs["boxes"], (f"the quote drew {glyphs['boxes']} as empty boxes in {glyphs['font']}: no Chinese "
                                 "font is installed (make install: fonts-wqy-microhei)")
