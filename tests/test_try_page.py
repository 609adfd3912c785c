"""The page to try every voice (``GET /``) in a real browser: Debian's Chromium, headless, driven by
Playwright. It speaks a phrase and the audio element gets playable audio; a long text starts playing
before its synthesis has ended; the voice list is searchable; it works with the keyboard; it asks for an
API key when the server wants one; axe-core finds no accessibility violation. Screenshots at phone and
desktop widths go to ``test-artifacts/``."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServiceProcess, require_binary, run_cli

ARTIFACTS = ROOT / "test-artifacts"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}


def chromium_path() -> str:
    require_binary("chromium")
    real = Path("/usr/lib/chromium/chromium")  # Debian's /usr/bin/chromium is a shell wrapper around it
    return str(real) if real.exists() else require_binary("chromium")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=[
            "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors  # no script error on the page


def speak(page, text: str, fmt: str = "mp3", voice: str | None = None) -> dict:
    page.fill("#text", text)
    page.select_option("#format", fmt)
    if voice:
        page.select_option("#voice", voice)
    page.click("#say")
    page.wait_for_function("window.tryState.finishedMs !== undefined || "
                           "document.querySelector('#status').classList.contains('error')", timeout=60_000)
    assert "error" not in (page.get_attribute("#status", "class") or ""), page.inner_text("#status")
    page.wait_for_function("document.querySelector('#player').readyState >= 1", timeout=30_000)
    return page.evaluate("""() => { const a = document.querySelector('#player');
        return {state: window.tryState, duration: a.duration, error: a.error && a.error.code,
                readyState: a.readyState, status: document.querySelector('#status').textContent}; }""")


def test_a_phrase_is_spoken_and_the_audio_element_plays_it(service, page):
    page.goto(service.url + "/")
    page.wait_for_selector("#voice option[value='piper:en_US-joe-medium']", state="attached")
    assert page.input_value("#voice") == "piper:en_US-joe-medium"  # the default voice, preselected
    text = f"Hello from the browser, test {uuid.uuid4().hex[:6]}."
    heard = speak(page, text)
    assert heard["error"] is None and heard["readyState"] >= 1
    # the player's length is the audio's: as long as the same request's answer decodes to
    answer = httpx.post(service.url + "/v1/audio/speech", json={"input": text, "response_format": "wav"}, timeout=60)
    seconds = (len(answer.content) - 44) / 2 / 22050
    assert abs(heard["duration"] - seconds) < 0.15 * seconds, (heard, seconds)
    assert heard["status"].startswith("Spoken by piper, synthesised"), heard["status"]
    assert page.is_visible("#download") and page.get_attribute("#download", "download") == "speech.mp3"
    assert text in page.inner_text("#recent")  # kept as a recent phrase
    again = speak(page, text, fmt="wav")  # not streamed: played once it has arrived
    assert again["error"] is None and abs(again["duration"] - seconds) < 0.05 * seconds, again
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "try-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / "try-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling


def test_a_long_text_starts_playing_before_its_synthesis_ends(service, page):
    page.goto(service.url + "/")
    page.wait_for_selector("#voice option", state="attached")
    tag = uuid.uuid4().hex[:6]
    words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kestrel",
             "lagoon"]
    text = " ".join(f"Sentence {tag} about the {word} is spoken while the rest is made." for word in words)
    heard = speak(page, text)
    state = heard["state"]
    assert state["playingMs"] < state["finishedMs"], state  # it played before the last of it arrived
    assert state["firstAudioMs"] < state["finishedMs"] / 3, state
    assert heard["duration"] > 12 * 2, heard  # twelve sentences: all of it in the player in the end


def test_voices_are_searchable_and_the_page_works_with_the_keyboard(service, page):
    page.goto(service.url + "/")
    page.wait_for_selector("#voice option", state="attached")
    # Tab order from the top: the links, then the form from top to bottom, ending on Speak
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert order == ["API", "Engine health", "text", "voice-filter", "voice", "format", "speed", "say"], order
    everyone = page.locator("#voice option").count()
    page.fill("#voice-filter", "afrikaans")
    labels = page.locator("#voice optgroup").evaluate_all("groups => groups.map(g => g.label)")
    assert labels == ["Afrikaans · espeak"] and page.locator("#voice option").count() < everyone
    page.fill("#voice-filter", "")
    assert page.locator("#voice option").count() == everyone
    page.fill("#text", f"Spoken with the keyboard {uuid.uuid4().hex[:6]}.")
    page.focus("#say")
    page.keyboard.press("Enter")
    page.wait_for_function("window.tryState.finishedMs !== undefined", timeout=60_000)
    page.fill("#text", "")
    page.focus("#say")
    page.keyboard.press("Enter")  # nothing to say: a message, and focus back on the text
    assert page.inner_text("#status") == "Type something to say first."
    assert page.evaluate("document.activeElement.id") == "text"


def test_axe_finds_no_accessibility_violations(service, page):
    from axe_playwright_python.sync_playwright import Axe

    page.goto(service.url + "/")
    page.wait_for_selector("#voice option", state="attached")
    speak(page, f"Checked for accessibility {uuid.uuid4().hex[:6]}.")
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    page.emulate_media(color_scheme="dark")  # the dark theme's contrast too
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_the_page_asks_for_an_api_key_when_the_server_wants_one(browser, tmp_path):
    svc = ServiceProcess(tmp_path / "data", env={"AUTH_MODE": "api_key", "ENGINES": "espeak",
                                                 "DEFAULT_VOICE": "espeak:en-us"})
    key = run_cli(svc, "keys", "create", "browser").stdout.strip()
    svc.start().wait_ready()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(svc.url + "/")
        page.wait_for_selector("#key-field:not([hidden])")
        assert "asks for an API key" in page.inner_text("#status")
        assert page.evaluate("document.activeElement.id") == "key"
        page.fill("#key", key)
        page.press("#key", "Enter")  # (change) the key is kept, the voices listed
        page.wait_for_selector("#voice option[value='espeak:en-us']", state="attached")
        heard = speak(page, "The key opened the door.")
        assert heard["error"] is None and heard["duration"] > 0.5
        assert page.evaluate(f"localStorage.getItem('ef-speech-key') === {key!r}")
    finally:
        context.close()
        svc.stop()


def test_the_page_is_never_cached_and_its_files_forever_under_their_content_hash(service):
    import hashlib
    import re

    with httpx.Client(base_url=service.url, timeout=30) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assets = re.findall(r'(?:href|src)="(/ui/[^"]+)"', page.text)
        assert {Path(a).suffix for a in assets} == {".css", ".js"}
        for asset in assets:
            got = c.get(asset)
            assert got.status_code == 200 and got.headers["cache-control"] == "public, max-age=31536000, immutable"
            stem, digest, suffix = Path(asset).name.split(".")
            assert hashlib.sha256(got.content).hexdigest()[:10] == digest  # the name changes with the content
            assert got.content == (ROOT / "web" / f"{stem}.{suffix}").read_bytes()
        missing = c.get("/ui/try.0000000000.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
