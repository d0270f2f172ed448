"""The lite loop end to end in a real browser (issue 16): vote on lite pairs in the Arena, start a lite DPO
round as the admin, watch its loss / implicit accuracy plot fill while it trains, activate the round,
generate with it, roll back. Debian's chromium through Playwright, the real app, trainer and store.

Kept short: two votes (HALLO4_LITE_MIN_VOTES=2 lets a round start on them) and a 40-step round.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .app_server import AppServer
from .test_browser import ARGS, CHROMIUM, READY, _text

pytestmark = [pytest.mark.browser, pytest.mark.slow]
STEPS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = AppServer(tmp_path_factory.mktemp("loopdata"), env={"HALLO4_LITE_MIN_VOTES": "2"})
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


_SHOWN = (
    "(s) => { const e = document.querySelector(s); return e ? e.innerText + ' ' + "
    "[...e.querySelectorAll('textarea, input')].map(i => i.value).join(' ') : ''; }"
)


def _shown(pg, sel: str) -> str:
    """What a component shows: its text and the values of its text fields."""
    return pg.evaluate(_SHOWN, sel)


def _wait_text(pg, sel: str, text: str, timeout: int = 60_000) -> str:
    pg.wait_for_function(f"([s, t]) => ({_SHOWN})(s).includes(t)", arg=[sel, text], timeout=timeout)
    return _shown(pg, sel)


def _vote(pg, button: str) -> str:
    pg.wait_for_function("() => !document.querySelector('#vote-left').disabled", timeout=240_000)
    pg.locator(button).click()
    return _wait_text(pg, "#arena-status", "Recorded", 30_000)


def test_vote_train_watch_activate_generate_roll_back(page, server, tmp_path):
    pg = page
    # 1. Two votes on lite pairs: no round is active, so both clips come from the base motion model.
    pg.get_by_role("tab", name="Arena").click()
    pg.get_by_text("Make a new pair").click()
    pg.locator("#new-pair-btn").click()
    reveal = _vote(pg, "#vote-left")
    assert "A was lite motion model, base" in reveal and "lite-motion" not in reveal, reveal  # words, not ids
    pg.locator("#next-pair-btn").click()  # prepared in the background after the vote
    _wait_text(pg, "#arena-status", "Pair #", 240_000)
    _vote(pg, "#vote-right")

    # 2. A lite round, started as the admin (served locally: no token needed), plotted while it trains.
    pg.get_by_role("tab", name="Train (DPO)").click()
    overview = _wait_text(pg, "#train-overview", "decisive votes on lite pairs: 2 (at least 2)")  # refreshed on select
    assert "A lite round needs" in overview and "✗" not in overview, overview
    steps = pg.locator("#train-steps input")
    steps.fill(str(STEPS))
    steps.press("Tab")
    pg.locator("#train-start").click()
    assert "Started lite round-001 on 2 usable lite votes" in _wait_text(pg, "#train-msg", "Started lite round-001")
    # Points on the chart while the round is still running (Stop is enabled only then).
    pg.wait_for_function(
        "() => !document.querySelector('#train-stop').disabled && "
        "document.querySelectorAll('#train-plot svg .mark-line path').length > 0 && "
        "document.querySelector('#train-live').innerText.includes('Training round-001: step')",
        timeout=240_000,
    )
    live = _text(pg, "#train-live")
    assert f"of {STEPS}:" in live and "implicit accuracy" in live, live
    _wait_text(pg, "#train-overview", "lite round-001 finished with exit code 0", 300_000)
    metrics = (server.data_dir / "rounds" / "lite" / "round-001" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == STEPS and {"loss", "implicit_acc"} <= set(json.loads(metrics[-1]))
    pg.wait_for_function("() => document.querySelector('#train-stop').disabled", timeout=30_000)
    pg.screenshot(path=str(tmp_path / "train_live.png"), full_page=True)

    # 3. Activate it: Generate's lite motion now comes from round-001.
    pg.locator("#train-round input").click()
    pg.get_by_role("option", name="round-001").click()
    pg.locator("#train-activate").click()
    _wait_text(pg, "#train-msg", "Generate's lite motion now: round-001")
    marker = server.data_dir / "rounds" / "lite" / "active.json"
    assert json.loads(marker.read_text()) == {"round": "round-001"}

    # 4. Generate with it (one click on an example): the clip's parameters name the round's motion model.
    pg.get_by_role("tab", name="Generate").click()
    pg.locator("#examples").get_by_text("grace_hopper.jpg").first.click()
    pg.wait_for_function(READY, arg="#result-video", timeout=180_000)
    info = _wait_text(pg, "#result-info", "round-001", 60_000)
    assert "motion" in info, info

    # 5. Roll back: no lite round is active any more.
    pg.get_by_role("tab", name="Train (DPO)").click()
    pg.locator("#train-rollback").click()
    _wait_text(pg, "#train-msg", "rolled back")
    assert not marker.exists()
    _wait_text(pg, "#train-overview", "no lite round active", 30_000)
