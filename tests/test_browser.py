"""The app in a real browser: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .app_server import AppServer

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = AppServer(tmp_path_factory.mktemp("browserdata"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: apt-get install chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1360, "height": 1000})
        pg.goto(server.url)
        pg.get_by_text("Hallo4 Studio").first.wait_for(timeout=60_000)
        yield pg
        browser.close()


def test_generate_in_the_browser(page, portrait_path, speech_path):
    from hallo4 import media

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#portrait-file input[type=file]").set_input_files(str(portrait_path))
    page.locator("#speech-input input[type=file]").set_input_files(str(speech_path))
    page.wait_for_timeout(1500)
    page.locator("#preview-btn").click()  # the quick look first: one second, shown in its own box
    preview = page.wait_for_function(
        "() => { const v = document.querySelector('#preview-video video'); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }",
        timeout=60_000).json_value()
    assert preview == pytest.approx(1.0, abs=0.1)
    page.locator("#generate-btn").click()
    video = page.locator("#result-video video")
    video.wait_for(state="attached", timeout=120_000)
    duration = page.wait_for_function(
        "() => { const v = document.querySelector('#result-video video'); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }",
        timeout=60_000).json_value()
    expected = media.probe(speech_path).duration
    assert duration == pytest.approx(expected, abs=0.12)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "generate.png"), full_page=True)


def test_arena_vote_is_counted(page, server):
    page.get_by_role("tab", name="Arena").click()
    page.get_by_text("Make a new pair").click()
    page.locator("#new-pair-btn").click()
    a_better = page.locator("#vote-left")
    page.wait_for_function("() => !document.querySelector('#vote-left').disabled", timeout=120_000)
    for side in ("arena-left", "arena-right"):
        page.wait_for_function(f"() => {{ const v = document.querySelector('#{side} video'); return v && v.readyState >= 1; }}", timeout=60_000)
    a_better.click()
    page.get_by_text("Recorded 'A better'").wait_for(timeout=30_000)
    assert page.locator("#vote-left").is_disabled()  # one vote per pair
    page.wait_for_function("() => document.querySelector('#win-rates').innerText.includes('lite')", timeout=30_000)
    import sqlite3

    with sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3") as con:
        assert con.execute("SELECT COUNT(*) FROM votes WHERE label IN ('a', 'b')").fetchone()[0] == 1
    page.wait_for_timeout(2000)  # the win-rate chart redraws after the vote
    page.screenshot(path=str(SHOTS / "arena.png"), full_page=True)


def test_skeleton_tab_loads_previews_and_hands_over(page, tmp_path, portrait_path, speech_path):
    import numpy as np
    from PIL import Image

    from hallo4 import skeleton as sk

    seq = sk.idle_skeleton(np.asarray(Image.open(portrait_path).convert("RGB")), 50, seed=1)
    skel = seq.save(tmp_path / "idle.json")
    page.get_by_role("tab", name="Skeleton").click()
    page.locator("#sk-file input[type=file]").set_input_files(str(skel))
    page.locator("#sk-portrait-file input[type=file]").set_input_files(str(portrait_path))
    page.wait_for_timeout(1500)
    page.locator("#sk-load-btn").click()
    page.wait_for_function("() => { const v = document.querySelector('#sk-preview video'); return v && v.readyState >= 1 && v.duration > 0; }",
                           timeout=90_000)
    page.wait_for_function("() => document.querySelector('#sk-notes textarea').value.includes('50 frames')", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "skeleton.png"), full_page=True)
    page.get_by_role("tab", name="Generate").click()
    assert page.get_by_label("from the Skeleton tab").is_checked()  # handed over to Generate
    page.get_by_label("none (idle motion)").check()


@pytest.mark.parametrize("tab,name", [("Train (DPO)", "train"), ("Models", "models")])
def test_other_tabs_render(page, tab, name):
    page.get_by_role("tab", name=tab).click()
    page.wait_for_timeout(800)
    if name == "models":
        page.get_by_text("weights missing").first.wait_for(timeout=30_000)
    if name == "train":
        page.get_by_text("Usable pairs").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000


def test_one_click_example_generates_a_clip(page):
    page.get_by_role("tab", name="Generate").click()
    before = page.evaluate("() => { const v = document.querySelector('#result-video video'); return v ? v.currentSrc : null; }")
    page.locator("#examples").get_by_text("grace_hopper.jpg").first.click()
    page.wait_for_function(
        "(b) => { const v = document.querySelector('#result-video video'); return v && v.currentSrc && v.currentSrc !== b && v.readyState >= 1 && v.duration > 0; }",
        arg=before, timeout=120_000)
    seed = page.locator("input[type=number]").evaluate_all("els => els.map(e => e.value)")
    assert "2025" in seed
