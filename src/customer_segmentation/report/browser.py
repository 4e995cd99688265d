"""The report as a browser shows it: headless Chromium (Debian's package) driven by Playwright.

Used by the browser tests and by `make screenshots` (docs/report.png, docs/report-phone.png).
`python -m customer_segmentation.report.browser <report.html> <out_dir>` writes both screenshots.
"""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

WIDTHS = {"report.png": 1280, "report-phone.png": 390}
MISSING = "Chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it)"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise RuntimeError(MISSING)
    with sync_playwright() as playwright:
        # --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def open_page(launched, path: Path, width: int):
    """A tab at `width` px showing the report, and the console errors and page errors it raised."""
    tab = launched.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(Path(path).resolve().as_uri(), wait_until="load")
    return tab, errors


def screenshots(path: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with browser() as launched:
        for name, width in WIDTHS.items():
            tab, _ = open_page(launched, path, width)
            tab.screenshot(path=str(out_dir / name), full_page=True)
            written.append(out_dir / name)
    return written


if __name__ == "__main__":
    for written in screenshots(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"wrote {written}")
