"""A browser's <audio> element plays every format the API answers (headless Chromium, as a page would)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import httpx

from tests.support import decode_with_ffmpeg, require_binary

PLAYABLE = ("mp3", "opus", "aac", "flac", "wav")  # pcm is raw samples: no browser plays it

PAGE = """<!doctype html><html><body><pre id="out"></pre><script>
const results = {};
const show = () => { document.getElementById("out").textContent = JSON.stringify(results); };
for (const [fmt, url] of Object.entries(%s)) {
  const audio = new Audio();
  audio.preload = "auto";
  audio.muted = true;
  audio.addEventListener("canplaythrough", () => {
    results[fmt] = {duration: audio.duration};
    audio.play().then(() => { results[fmt].played = true; show(); },
                      (e) => { results[fmt].playError = String(e); show(); });
  }, {once: true});
  audio.addEventListener("error", () => { results[fmt] = {error: audio.error && audio.error.code}; show(); });
  audio.src = url;
}
</script></body></html>"""


def test_an_audio_element_plays_every_format(service, tmp_path):
    chromium = require_binary("chromium")
    text = f"A browser plays this sentence, take {uuid.uuid4().hex[:5]}."
    urls, decoded = {}, {}
    with httpx.Client(base_url=service.url, timeout=120) as c:
        for fmt in PLAYABLE:
            answer = c.post("/v1/audio/speech", json={"input": text, "response_format": fmt})
            assert answer.status_code == 200
            urls[fmt] = f"{service.url}/audio/{answer.headers['etag'].strip(chr(34))}"
            decoded[fmt] = decode_with_ffmpeg(answer.content).seconds
    page = tmp_path / "audio.html"
    page.write_text(PAGE % json.dumps(urls))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                          "--autoplay-policy=no-user-gesture-required", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="out">(.*)</pre>', dom)
    assert found, dom[-2000:]
    results = json.loads(found[1].replace("&quot;", '"'))
    for fmt in PLAYABLE:
        result = results.get(fmt)
        assert result and result.get("played") and "error" not in result, (fmt, results)
        # AAC (ADTS) has no length field: the browser estimates it, as every reader does
        tolerance = 0.08 if fmt == "aac" else 0.03
        assert abs(result["duration"] - decoded[fmt]) <= tolerance * decoded[fmt] + 0.03, (fmt, result, decoded[fmt])
