"""Make docs/explorer.png: the explorer on the published stage-4 tables, one source selected.

    .venv/bin/python docs/screenshot.py [--reference ../shared/reference]

Reads the published tables from the shared reference directory (never copied here),
writes the page to a temporary folder, opens it offline in headless Chromium
(Playwright) and saves the screenshot README.md shows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.test_explorer_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from xrayclass.io import paths  # noqa: E402
from xrayclass.workflow.explorer import read_run, write_explorer  # noqa: E402

SOURCE = "2CXO J004231.1+411621"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=paths.reference_dir())
    parser.add_argument("--output", type=Path, default=HERE / "explorer.png")
    args = parser.parse_args()
    reference = args.reference
    tables_needed = [reference / f"paper_{name}.csv" for name in ("uniquely_classified", "ambiguous_classification")]
    if CHROMIUM is None or not all(path.is_file() for path in tables_needed):
        print("screenshot.py: needs Chromium and the published tables in the reference directory", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        detections = reference / "paper_detection_level_classification.csv"
        tables = read_run(Path(folder), *tables_needed, detections if detections.is_file() else None)
        tables.title = "Published stage-4 tables (Pérez-Díaz et al. 2024)"
        page_path = Path(folder) / "explorer.html"
        write_explorer(tables, page_path)
        with sync_playwright() as runner:
            browser = runner.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1300}).new_page()
            page.route(
                "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
            )
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=180_000)
            page.select_option("#set", "unique")
            page.select_option("#frame", "gal")
            page.select_option("#fy", "bb_kt")
            page.check("#logy")
            page.fill("#search", SOURCE)
            page.press("#search", "Enter")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.output), full_page=True)
            browser.close()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
