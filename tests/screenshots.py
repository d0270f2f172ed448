"""Refresh the screenshots in docs/screenshots/ (on purpose; the test run never writes there).

    python -m tests.screenshots            # all tabs at 1360x1000, plus the phone view (390x844)
    python -m tests.screenshots --out DIR  # somewhere else

Starts the real app on a free port with a throwaway data folder, drives Debian's chromium through a
short first session (an example clip, a skeleton over the portrait, an Arena pair and vote, Train,
Models) and saves one PNG per view.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "screenshots"
READY = (
    "(sel) => { const v = document.querySelector(sel + ' video'); return v && v.readyState >= 1 && v.duration > 0; }"
)


def take(out: Path) -> list[Path]:
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from hallo4 import skeleton as sk

    from .app_server import AppServer
    from .test_browser import ARGS, CHROMIUM

    out.mkdir(parents=True, exist_ok=True)
    portrait = ROOT / "examples" / "portraits" / "grace_hopper.jpg"
    speech = ROOT / "examples" / "audio" / "hello.wav"
    work = Path(tempfile.mkdtemp(prefix="hallo4-shots-"))
    skel = sk.idle_skeleton(np.asarray(Image.open(portrait).convert("RGB")), 50, seed=1).save(work / "idle.json")
    (work / "data").mkdir()
    server = AppServer(work / "data")
    written: list[Path] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1360, "height": 1000})
            pg.goto(server.url)
            pg.get_by_text("Hallo4 Studio").first.wait_for(timeout=60_000)

            def shot(name: str, page=pg, full: bool = True) -> None:
                page.wait_for_timeout(800)
                path = out / f"{name}.png"
                page.screenshot(path=str(path), full_page=full)
                written.append(path)
                print(path)

            pg.locator("#portrait-file input[type=file]").set_input_files(str(portrait))
            pg.locator("#speech-input input[type=file]").set_input_files(str(speech))
            pg.wait_for_function("() => document.querySelector('#speech-check').innerText.length > 0", timeout=60_000)
            pg.locator("#generate-btn").click()
            pg.wait_for_function(READY, arg="#result-video", timeout=180_000)
            shot("generate")

            pg.get_by_role("tab", name="Skeleton").click()
            pg.locator("#sk-file input[type=file]").set_input_files(str(skel))
            pg.locator("#sk-portrait-file input[type=file]").set_input_files(str(portrait))
            pg.wait_for_timeout(1500)
            pg.locator("#sk-load-btn").click()
            pg.wait_for_function(READY, arg="#sk-preview", timeout=120_000)
            shot("skeleton")

            pg.get_by_role("tab", name="Arena").click()
            pg.locator("#next-pair-btn").click()
            pg.wait_for_function("() => !document.querySelector('#vote-left').disabled", timeout=180_000)
            for side in ("#arena-left", "#arena-right"):
                pg.wait_for_function(READY, arg=side, timeout=60_000)
            pg.locator("#vote-left").click()
            pg.wait_for_function(
                "() => document.querySelector('#arena-status').innerText.includes('Recorded')", timeout=60_000
            )
            shot("arena")

            pg.get_by_role("tab", name="Train (DPO)").click()
            pg.get_by_text("A lite round needs").first.wait_for(timeout=30_000)
            shot("train")
            pg.get_by_role("tab", name="Models").click()
            pg.get_by_text("weights missing").first.wait_for(timeout=30_000)
            shot("models")

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            phone.goto(server.url)
            phone.get_by_text("Hallo4 Studio").first.wait_for(timeout=60_000)
            phone.locator("#portrait-file input[type=file]").set_input_files(str(portrait))
            phone.locator("#speech-input input[type=file]").set_input_files(str(speech))
            phone.wait_for_function(
                "() => document.querySelector('#speech-check').innerText.length > 0", timeout=60_000
            )
            phone.locator("#generate-btn").click()
            phone.wait_for_function(READY, arg="#result-video", timeout=180_000)
            shot("mobile", phone, full=False)
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for the PNGs (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    take(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
