"""The app in a real browser: Debian's chromium driven by Playwright (no browser download).

Screenshots go to a temporary folder (the test run never writes into the repository); the ones in
docs/screenshots/ are refreshed on purpose with `python -m tests.screenshots`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .app_server import app_server_fixture

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


server = app_server_fixture("browserdata")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: apt-get install chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(server, browser):
    pg = browser.new_page(viewport={"width": 1360, "height": 1000})
    pg.goto(server.url)
    pg.get_by_text("Hallo4 Studio").first.wait_for(timeout=60_000)
    yield pg
    pg.close()


def test_generate_in_the_browser(page, shots, portrait_path, speech_path):
    from hallo4 import media

    page.locator("#portrait-file input[type=file]").set_input_files(str(portrait_path))
    page.locator("#speech-input input[type=file]").set_input_files(str(speech_path))
    page.wait_for_timeout(1500)
    page.locator("#preview-btn").click()  # the quick look first: one second, shown in its own box
    preview = page.wait_for_function(
        "() => { const v = document.querySelector('#preview-video video'); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }",
        timeout=60_000,
    ).json_value()
    assert preview == pytest.approx(1.0, abs=0.1)
    page.locator("#generate-btn").click()
    video = page.locator("#result-video video")
    video.wait_for(state="attached", timeout=120_000)
    duration = page.wait_for_function(
        "() => { const v = document.querySelector('#result-video video'); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }",
        timeout=60_000,
    ).json_value()
    expected = media.probe(speech_path).duration
    assert duration == pytest.approx(expected, abs=0.12)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "generate.png"), full_page=True)


def test_arena_vote_is_counted(page, server, shots):
    page.get_by_role("tab", name="Arena").click()
    page.get_by_text("Make a new pair").click()
    page.locator("#new-pair-btn").click()
    a_better = page.locator("#vote-left")
    page.wait_for_function("() => !document.querySelector('#vote-left').disabled", timeout=120_000)
    for side in ("arena-left", "arena-right"):
        page.wait_for_function(
            f"() => {{ const v = document.querySelector('#{side} video'); return v && v.readyState >= 1; }}",
            timeout=60_000,
        )
    a_better.click()
    page.get_by_text("Recorded 'A better'").wait_for(timeout=30_000)
    assert page.locator("#vote-left").is_disabled()  # one vote per pair
    page.wait_for_function("() => document.querySelector('#win-rates').innerText.includes('lite')", timeout=30_000)
    import sqlite3

    with sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3") as con:
        assert con.execute("SELECT COUNT(*) FROM votes WHERE label IN ('a', 'b')").fetchone()[0] == 1
    page.wait_for_timeout(2000)  # the win-rate chart redraws after the vote
    page.screenshot(path=str(shots / "arena.png"), full_page=True)


def test_skeleton_tab_loads_previews_and_hands_over(page, shots, tmp_path, portrait_path, speech_path):
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
    page.wait_for_function(
        "() => { const v = document.querySelector('#sk-preview video'); return v && v.readyState >= 1 && v.duration > 0; }",
        timeout=90_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#sk-notes textarea').value.includes('50 frames')", timeout=30_000
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "skeleton.png"), full_page=True)
    page.get_by_role("tab", name="Generate").click()
    assert page.get_by_label("from the Skeleton tab").is_checked()  # handed over to Generate
    page.get_by_label("none (idle motion)").check()


@pytest.mark.parametrize("tab,name", [("Train (DPO)", "train"), ("Models", "models")])
def test_other_tabs_render(page, shots, tab, name):
    page.get_by_role("tab", name=tab).click()
    page.wait_for_timeout(800)
    if name == "models":
        page.get_by_text("weights missing").first.wait_for(timeout=30_000)
    if name == "train":
        page.get_by_text("Usable pairs").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / f"{name}.png").stat().st_size > 10_000


def test_one_click_example_generates_a_clip(page):
    page.get_by_role("tab", name="Generate").click()
    before = page.evaluate(
        "() => { const v = document.querySelector('#result-video video'); return v ? v.currentSrc : null; }"
    )
    page.locator("#examples").get_by_text("grace_hopper.jpg").first.click()
    page.wait_for_function(
        "(b) => { const v = document.querySelector('#result-video video'); return v && v.currentSrc && v.currentSrc !== b && v.readyState >= 1 && v.duration > 0; }",
        arg=before,
        timeout=120_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#seed-used textarea, #seed-used input').value === '2025'", timeout=30_000
    )


# ------------------------------------------------------------------------------------------------
# A newcomer's first session (issue 17): each friction they met, walked through in the browser.
# ------------------------------------------------------------------------------------------------
READY = "(sel) => { const v = document.querySelector(sel + ' video'); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null; }"


def _open(browser, server, width=1280, height=800):
    pg = browser.new_page(viewport={"width": width, "height": height})
    pg.goto(server.url)
    pg.get_by_text("Hallo4 Studio").first.wait_for(timeout=60_000)
    return pg


def _text(pg, sel: str) -> str:
    return pg.evaluate("(s) => { const e = document.querySelector(s); return e ? e.innerText : ''; }", sel)


def _value(pg, sel: str) -> str:
    q = f"{sel} textarea, {sel} input"
    pg.wait_for_function("(q) => document.querySelector(q) !== null", arg=q, timeout=30_000)
    return pg.evaluate("(q) => document.querySelector(q).value", q)


def _upload(pg, sel: str, path) -> None:
    """Set a file input, clearing what the component holds first (a filled one has no file input)."""
    # Wait until the component has rendered one or the other (an accordion renders its children on open):
    # counting Clear buttons before that raced with the render and then waited for an input that never came.
    pg.locator(f"{sel} input[type=file], {sel} button[aria-label=Clear]").first.wait_for(
        state="attached", timeout=60_000
    )
    clear = pg.locator(f"{sel} button[aria-label=Clear]")
    if clear.count():
        clear.first.click()
        pg.wait_for_timeout(300)
    pg.locator(f"{sel} input[type=file]").set_input_files(str(path))


def _in_view(pg, sel: str) -> bool:
    return pg.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect(); "
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight + 1; }",
        sel,
    )


@pytest.fixture(scope="module")
def media_files(tmp_path_factory, portrait_path, speech_path):
    """A tall 1024x1536 portrait, a landscape with no face, an empty and a broken 'audio', speech after 3 s of silence."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from hallo4 import media

    d = tmp_path_factory.mktemp("newcomer")
    face = Image.open(portrait_path).convert("RGB").resize((1024, 1024))
    tall = Image.new("RGB", (1024, 1536), face.getpixel((5, 5)))
    tall.paste(face, (0, 256))
    tall.save(d / "tall portrait.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 480, dtype=np.uint8)[None, :, None], (320, 1, 3))).save(
        d / "landscape.jpg"
    )
    (d / "empty.wav").write_bytes(b"")
    (d / "broken.mp3").write_text("not audio " * 100)
    speech = media.load_audio(speech_path, 16000)
    sf.write(d / "late start.wav", np.concatenate([np.zeros(3 * 16000, np.float32), speech]), 16000)
    sf.write(d / "late short.wav", np.concatenate([np.zeros(3 * 16000, np.float32), speech[:24000]]), 16000)  # 4.5 s
    return d


def test_first_look_defaults(browser, server, media_files, speech_path):
    """Seed used is empty, hallo4 is not offered without weights (with a note), the advanced fields stay
    empty when opened and mean "preset", and a tall portrait keeps its aspect at a sensible size."""
    pg = _open(browser, server)
    assert _value(pg, "#seed-used") == ""
    assert "weights are missing" in _text(pg, "#engine-note")
    pg.locator("#engine input").click()
    options = pg.locator("[role=option]").all_inner_texts()
    assert options and all("hallo4" not in o for o in options), options
    pg.keyboard.press("Escape")
    pg.get_by_text("Advanced").click()
    pg.wait_for_timeout(500)
    for sel in ("#adv-steps", "#adv-guidance", "#adv-size", "#adv-max-seconds"):
        assert _value(pg, sel) == "", sel
    assert pg.evaluate("() => document.querySelectorAll('#advanced :invalid').length") == 0  # no red borders
    pg.locator("#portrait-file input[type=file]").set_input_files(str(media_files / "tall portrait.png"))
    pg.locator("#speech-input input[type=file]").set_input_files(str(speech_path))
    pg.wait_for_function(
        "() => document.querySelector('#portrait-file-check').innerText.includes('face found')", timeout=30_000
    )
    pg.locator("#generate-btn").click()
    pg.wait_for_function(READY, arg="#result-video", timeout=120_000)
    size = pg.evaluate(
        "() => { const v = document.querySelector('#result-video video'); return [v.videoWidth, v.videoHeight]; }"
    )
    assert size == [512, 768]  # fast preset: 768 long side, the portrait's aspect (not 256x384)
    for sel in ("#adv-steps", "#adv-guidance", "#adv-size", "#adv-max-seconds"):
        assert _value(pg, sel) == "", sel  # still empty after a run: they mean "preset"
    assert _value(pg, "#seed-used").isdigit()
    pg.close()


def test_uploads_are_checked_at_once(browser, server, media_files, portrait_path):
    pg = _open(browser, server)
    pg.locator("#generate-btn").click()  # nothing uploaded: both inputs are named
    pg.get_by_text("the portrait photo and the speech recording").first.wait_for(timeout=30_000)
    _upload(pg, "#portrait-file", media_files / "landscape.jpg")
    pg.wait_for_function(
        "() => document.querySelector('#portrait-file-check').innerText.includes('landscape.jpg')", timeout=30_000
    )
    msg = _text(pg, "#portrait-file-check")
    assert "landscape.jpg: no face found" in msg and "hallo4" not in msg and "/tmp" not in msg
    for name, expect in (("empty.wav", "0 bytes"), ("broken.mp3", "could not be decoded")):
        _upload(pg, "#speech-input", media_files / name)
        pg.wait_for_function(
            "(n) => document.querySelector('#speech-check').innerText.includes(n)", arg=name, timeout=30_000
        )
        msg = _text(pg, "#speech-check")
        assert expect in msg and "/tmp" not in msg, msg
    _upload(pg, "#speech-input", media_files / "late start.wav")
    pg.wait_for_function(
        "() => document.querySelector('#speech-check').innerText.includes('speech starts at 3')", timeout=30_000
    )
    pg.close()


def test_preview_is_cleared_when_inputs_change(browser, server, portrait_path, speech_path, hopper_path):
    pg = _open(browser, server)
    pg.locator("#portrait-file input[type=file]").set_input_files(str(portrait_path))
    pg.locator("#speech-input input[type=file]").set_input_files(str(speech_path))
    pg.wait_for_timeout(1000)
    pg.locator("#preview-btn").click()
    pg.wait_for_function(READY, arg="#preview-video", timeout=60_000)
    _upload(pg, "#portrait-file", hopper_path)
    pg.wait_for_function(
        "() => { const e = document.querySelector('#preview-video'); return !e || e.offsetParent === null || !e.querySelector('video'); }",
        timeout=30_000,
    )
    pg.close()


def test_cancel_says_what_happened_and_one_progress_bar(browser, server, portrait_path, examples_dir):
    pg = _open(browser, server)
    pg.locator("#cancel-btn").click()
    pg.wait_for_function(
        "() => document.querySelector('#job-status').innerText.includes('Nothing is running')", timeout=15_000
    )
    pg.locator("#portrait-file input[type=file]").set_input_files(str(portrait_path))
    pg.locator("#speech-input input[type=file]").set_input_files(str(examples_dir / "audio" / "story.wav"))
    pg.wait_for_timeout(1000)
    pg.locator("#generate-btn").click()
    visible_bars = (
        "() => [...document.querySelectorAll('.eta-bar, .progress-text')].filter(e => e.offsetParent !== null)"
        ".map(e => e.closest('[id]')?.id || '?')"
    )
    bars = pg.wait_for_function(
        f"() => {{ const b = ({visible_bars})(); return b.includes('result-video') ? b : null; }}", timeout=60_000
    ).json_value()
    # One progress display for the job, on the result (it used to be drawn on the seed and info boxes too).
    assert "result-video" in bars and not {"seed-used", "result-info"} & set(bars), bars
    pg.locator("#cancel-btn").click()
    pg.wait_for_function("() => document.querySelector('#job-status').innerText.includes('Cancelled')", timeout=30_000)
    pg.close()


def test_skeleton_hands_portrait_speech_and_shows_it_in_generate(
    browser, server, tmp_path, portrait_path, speech_path
):
    import numpy as np
    from PIL import Image

    from hallo4 import skeleton as sk

    skel = sk.idle_skeleton(np.asarray(Image.open(portrait_path).convert("RGB")), 30, seed=2).save(
        tmp_path / "moves.json"
    )
    pg = _open(browser, server)
    pg.get_by_role("tab", name="Skeleton").click()
    pg.locator("#sk-file input[type=file]").set_input_files(str(skel))
    pg.locator("#sk-portrait-file input[type=file]").set_input_files(str(portrait_path))
    pg.locator("#sk-audio input[type=file]").set_input_files(str(speech_path))
    pg.wait_for_timeout(1500)
    pg.locator("#sk-load-btn").click()
    pg.wait_for_function(READY, arg="#sk-preview", timeout=90_000)
    pg.get_by_role("tab", name="Generate").click()
    pg.wait_for_function(
        "() => document.querySelector('#skeleton-summary').innerText.includes('frames')", timeout=30_000
    )
    assert ".json" in _text(pg, "#skeleton-summary")
    assert "astronaut.png" in _text(pg, "#portrait-file").replace("\n", "")
    pg.wait_for_function(
        "() => document.querySelector('#speech-input audio, #speech-input [data-testid=waveform-controls]') !== null",
        timeout=30_000,
    )
    pg.close()


def test_arena_flow_at_1280x800(browser, server, media_files):
    pg = _open(browser, server, 1280, 800)
    pg.get_by_role("tab", name="Arena").click()
    # A pair of speech that starts after 3 s of silence: the 4 s clips cover the speech, not the pause.
    pg.get_by_text("Make a new pair").click()
    _upload(pg, "#arena-audio", media_files / "late short.wav")
    pg.wait_for_timeout(1500)
    pg.locator("#new-pair-btn").click()
    pg.wait_for_function("() => document.body.innerText.includes('Clip 2 of 2')", timeout=120_000)
    pg.wait_for_function("() => !document.querySelector('#vote-left').disabled", timeout=120_000)
    duration = pg.wait_for_function(READY, arg="#arena-left", timeout=60_000).json_value()
    assert duration < 2.5  # 1.5 s of speech plus a breath of lead-in, not 4 s that are mostly the silence
    pg.evaluate("() => window.scrollTo(0, 0)")
    pg.get_by_role("tab", name="Arena").scroll_into_view_if_needed()
    for sel in ("#vote-left", "#vote-right", "#next-pair-btn"):
        assert _in_view(pg, sel), sel
    first = _text(pg, "#arena-status")
    pg.locator("#vote-left").click()
    pg.wait_for_function(
        "() => document.querySelector('#arena-status').innerText.includes('Recorded')", timeout=30_000
    )
    reveal = _text(pg, "#arena-status")
    assert "lite motion model" in reveal and "lite-motion" not in reveal, reveal  # words, not ids
    pg.locator("#next-pair-btn").click()  # the next pair was being prepared after the vote
    pg.wait_for_function(
        "(f) => { const t = document.querySelector('#arena-status').innerText; "
        "return t.startsWith('Pair #') && t !== f; }",
        arg=first,
        timeout=180_000,
    )
    assert "No pending pair" not in _text(pg, "#arena-status")
    assert not pg.locator("#vote-left").is_disabled()
    pg.close()


def test_train_says_what_it_needs(browser, server):
    """Without hallo4 weights the tab opens on the lite engine (any CPU); hallo4 lists its own needs."""
    pg = _open(browser, server)
    pg.get_by_role("tab", name="Train (DPO)").click()
    pg.wait_for_function(
        "() => document.querySelector('#train-overview').innerText.includes('A lite round needs')", timeout=30_000
    )
    text = _text(pg, "#train-overview")
    for needed in ("decisive votes on lite pairs", "any CPU", "Served locally"):
        assert needed in text, needed
    pg.get_by_text("hallo4: diffusion LoRA (GPU)").click()
    pg.wait_for_function(
        "() => document.querySelector('#train-overview').innerText.includes('A training round needs')", timeout=30_000
    )
    text = _text(pg, "#train-overview")
    for needed in ("hallo4", "GPU", "decisive Arena votes", "Served locally"):
        assert needed in text, needed
    assert (
        pg.locator("#train-token").count() == 0 or not pg.locator("#train-token").is_visible()
    )  # served locally: no token box
    stop = pg.locator("#train-stop")
    assert stop.is_disabled() and "stop" not in (stop.get_attribute("class") or "").split()  # not bright red when idle
    assert "training step" in _text(pg, "#train-plot") or pg.get_by_text("The chart stays empty").count() == 1
    pg.close()


def test_phone_layout(browser, server, shots, portrait_path, speech_path):
    pg = _open(browser, server, 390, 844)
    pg.locator("#portrait-file input[type=file]").set_input_files(str(portrait_path))
    pg.locator("#speech-input input[type=file]").set_input_files(str(speech_path))
    pg.wait_for_timeout(1500)
    assert _in_view(pg, "#generate-btn")  # the action stays in view (sticky) on a phone
    fits = pg.evaluate(
        "() => { const i = document.querySelector('#engine input'); return i.scrollWidth <= i.clientWidth + 1; }"
    )
    assert fits  # the engine's label is not cut
    pg.locator("#generate-btn").click()
    pg.wait_for_function(READY, arg="#result-video", timeout=120_000)
    pg.wait_for_timeout(800)
    assert _in_view(pg, "#result-video video")  # the result is brought into view
    pg.screenshot(path=str(shots / "mobile.png"))
    pg.close()
