"""The disclosure HTML in headless Chromium: it renders, logs nothing to the console, and keeps its layout.

Layout is compared against committed baseline screenshots (desktop/A4 width and phone width) with a small tolerance.
Set LEDGER_UPDATE_BASELINES=1 to rewrite the baselines after an intended layout change.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import date
from pathlib import Path

import pytest

from conftest import FIXTURES
from ledger.disclosure import ledger_info
from ledger.projections.disclosure import build_disclosure, document_sha256
from ledger.projections.disclosure_render import render_html
from ledger.projections.readmodel import ReadModel, update_read_model
from test_qinghe_import import load_qinghe

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")

# A fixed note, so the QR code (and so the screenshot) does not change with cosignature timestamps.
NOTE = (
    "qinghe.example/ledger\n341\nq1dmZ0e8nJbRdQxj0vm0m7XKZ9cN+3V6ZQ2o8oYjN1Y=\n\n"
    "— qinghe.example/ledger 9w0rAQ== Zm9vYmFyYmF6cXV4\n"
)
MAX_DIFFERING_PIXELS = 0.005
CHANNEL_TOLERANCE = 40


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Run headless Chromium on a page and return its stderr log (console messages are INFO:CONSOLE lines)."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--force-device-scale-factor=1", *extra, url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def console_messages(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def read_png(path: Path) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and raw pixel rows of an 8-bit RGB/RGBA PNG, with the standard library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    offset, chunks, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"{path}: unsupported PNG layout {header}"
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, b"".join(rows)


def differing_share(actual: Path, baseline: Path) -> float:
    w1, h1, b1, p1 = read_png(actual)
    w2, h2, b2, p2 = read_png(baseline)
    assert (w1, h1) == (w2, h2), f"screenshot is {w1}x{h1}, baseline {w2}x{h2}"
    differing = sum(
        1 for i in range(w1 * h1)
        if any(abs(p1[i * b1 + c] - p2[i * b2 + c]) > CHANNEL_TOLERANCE for c in range(3))
    )
    return differing / (w1 * h1)


@pytest.fixture(scope="module")
def june_page(tmp_path_factory):
    from conftest import make_signer

    directory = tmp_path_factory.mktemp("browser")
    app = load_qinghe(str(directory / "ledger.sqlite"), make_signer(), "2023")
    model = ReadModel(app.location)
    update_read_model(app, model)
    doc = build_disclosure(
        model, ledger_info(app, date(2025, 6, 30)), "2025-06", published=date(2025, 7, 5), checkpoint_note=NOTE,
        checkpoint_size=341,
    )
    model.close()
    app.close()
    page = directory / "disclosure-2025-06.html"
    page.write_text(render_html(doc, document_sha256(doc)), "utf-8")
    return page


def test_console_check_catches_a_page_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("坏了")</script></body></html>', "utf-8")
    log = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert len(console_messages(log)) == 1


@pytest.mark.parametrize("width,height,name", [(1000, 2400, "desktop"), (390, 2400, "phone")])
def test_disclosure_renders_without_console_errors_and_keeps_its_layout(june_page, tmp_path, width, height, name):
    shot = tmp_path / f"{name}.png"
    log = chromium(june_page.as_uri(), tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={shot}")
    assert console_messages(log) == []
    baseline = FIXTURES / f"disclosure_2025_06_{name}.png"
    if os.environ.get("LEDGER_UPDATE_BASELINES") == "1":
        shutil.copyfile(shot, baseline)
    share = differing_share(shot, baseline)
    assert share <= MAX_DIFFERING_PIXELS, f"{name}: {share:.2%} of pixels differ from {baseline.name}"


def test_disclosure_prints_to_a4_pdf(june_page, tmp_path):
    pdf = tmp_path / "board.pdf"
    log = chromium(june_page.as_uri(), tmp_path / "profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert console_messages(log) == []
    # A4 is 595.3 x 841.9 points; every page of the printout must have that media box (within a point).
    boxes = {(float(w), float(h)) for w, h in re.findall(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf.read_bytes())}
    assert boxes and all(abs(w - 595.3) < 1 and abs(h - 841.9) < 1 for w, h in boxes), boxes
