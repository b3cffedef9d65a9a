"""The server's web page in a real browser: Debian's headless Chromium, driven by Playwright
over the DevTools protocol (no browser download: ``executable_path``)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from conftest import REF_WAV
from test_server import LONG_TEXT, Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TEXT = "Hello from the browser."


@pytest.fixture(scope="module")
def server(small, tmp_path_factory):
    srv = Server(small, tmp_path_factory.mktemp("web"), "--max-streams", "4")
    yield srv
    srv.stop()


@pytest.fixture()
def page(server):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (tools/run_tests.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page()
        page.problems = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#voice option').length > 0")
        yield page
        browser.close()


def test_page_plays_a_synthesis(page, small):
    from pocket_tts import TTSModel

    model = TTSModel.load_model(config=small, temp=0)
    voice = model.get_state_for_audio_prompt(str(REF_WAV), truncate=True)
    expected = len(np.asarray(model.generate_audio(voice, TEXT)))
    assert page.title() == "Pocket TTS"
    page.fill("#text", TEXT)
    page.select_option("#voice", "alloy")
    page.click("#play")
    page.wait_for_function(
        "window.pocketTTS.state === 'done' || window.pocketTTS.state === 'error'", timeout=60000
    )
    stats = page.evaluate("window.pocketTTS")
    assert stats["state"] == "done", stats
    assert stats["samplesScheduled"] == expected  # every sample reached the AudioContext
    assert stats["chunks"] >= 1 and stats["firstAudioMs"] is not None
    assert page.evaluate("audioCtx.sampleRate") == 24000
    assert not page.problems, page.problems  # type: ignore[attr-defined]


def test_stop_cancels_the_server_stream(page, server):
    before = server.metric("pocket_tts_streams_cancelled_total")
    page.fill("#text", LONG_TEXT)
    page.click("#play")
    page.wait_for_function(
        "window.pocketTTS.chunks > 2 || window.pocketTTS.state !== 'playing'", timeout=60000
    )
    assert page.evaluate("window.pocketTTS.state") == "playing", page.inner_text("#status")
    assert server.metric("pocket_tts_active_streams") == 1
    page.click("#stop")
    deadline = time.monotonic() + 30
    while server.metric("pocket_tts_active_streams") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.metric("pocket_tts_active_streams") == 0
    assert server.metric("pocket_tts_streams_cancelled_total") == before + 1
    assert page.evaluate("window.pocketTTS.state") == "stopped"
    assert not page.problems, page.problems  # type: ignore[attr-defined]


def test_page_clones_a_voice(page, server):
    page.set_input_files("#clone", str(REF_WAV.parent / "jfk_16k.wav"))
    page.fill("#clone-name", "jfk")
    page.click("#upload")
    page.wait_for_function(
        "['Added', 'Error'].some(w => document.getElementById('status').textContent.startsWith(w))",
        timeout=60000,
    )
    assert page.inner_text("#status").startswith("Added"), page.inner_text("#status")
    chosen = page.eval_on_selector("#voice", "el => el.value")
    assert chosen.startswith("voice_")
    assert "jfk (cloned)" in page.inner_text("#voice")
    assert not page.problems, page.problems  # type: ignore[attr-defined]
