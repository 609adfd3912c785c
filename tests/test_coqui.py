"""Coqui TTS in a real service process, with a tiny randomly initialised VITS that the test builds with the
package's own config classes and the service loads through the public path (``TTS.api.TTS(model_path=…,
config_path=…)``). No weights can be downloaded here; its audio is noise, so the checks are format,
sample rate, length and loudness, not words."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import httpx
import pytest

from tests.support import ServiceProcess, decode_wav, decode_with_ffmpeg, running_service

BUILD = textwrap.dedent("""
    import json
    import sys
    import torch
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    out = sys.argv[1]
    speakers = [s for s in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if s]  # multi-speaker
    languages = [s for s in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if s]  # multi-lingual
    extra, lang_args = {}, {}
    if speakers:
        json.dump({name: n for n, name in enumerate(speakers)}, open(f"{out}/speakers.json", "w"))
        extra = {"use_speaker_embedding": True, "speakers_file": f"{out}/speakers.json"}
    if languages:
        json.dump({name: n for n, name in enumerate(languages)}, open(f"{out}/language_ids.json", "w"))
        lang_args = {"use_language_embedding": True, "language_ids_file": f"{out}/language_ids.json",
                     "embedded_language_dim": 4}
    torch.manual_seed(1)
    args = VitsArgs(hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_heads_text_encoder=2,
                    num_layers_text_encoder=1, num_layers_posterior_encoder=1, num_layers_flow=1,
                    resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3, 5]],
                    upsample_initial_channel_decoder=32, use_sdp=False, init_discriminator=False, **extra,
                    **lang_args)
    cleaner = "multilingual_cleaners" if languages else "english_cleaners"
    config = VitsConfig(model_args=args, use_phonemes=False, text_cleaner=cleaner, phonemizer=None,
                        test_sentences=[], **extra)
    model = Vits.init_from_config(config)
    torch.save({"model": model.state_dict()}, f"{out}/model.pth")
    model.config.save_json(f"{out}/config.json")
""")


def _coqui_installed() -> bool:
    try:
        from importlib.metadata import version

        version("coqui-tts")
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory):
    if not _coqui_installed():
        message = "coqui-tts is not installed (make test installs it: make coqui)"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)
    out = tmp_path_factory.mktemp("models") / "tiny-vits"
    out.mkdir()
    subprocess.run([sys.executable, "-c", BUILD, str(out)], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def coqui_service(tiny_vits, tmp_path_factory):
    env = {"ENGINES": "coqui,espeak", "COQUI_MODEL_PATH": str(tiny_vits / "model.pth"),
           "COQUI_CONFIG_PATH": str(tiny_vits / "config.json"), "DEFAULT_VOICE": "coqui:tiny-vits"}
    with running_service(tmp_path_factory.mktemp("coqui") / "data", env, ready_timeout=180) as proc:
        yield proc


def speak(svc, text: str, **extra) -> httpx.Response:
    resp = httpx.post(svc.url + "/v1/audio/speech", json={"input": text, "response_format": "wav", **extra},
                      timeout=120)
    assert resp.status_code == 200, resp.text
    return resp


def test_coqui_model_from_local_files_speaks(coqui_service):
    voices = httpx.get(coqui_service.url + "/api/voices?engine=coqui").json()["voices"]
    assert [v["id"] for v in voices] == ["coqui:tiny-vits"] and voices[0]["language"] == "en"
    tts = httpx.get(coqui_service.url + "/health/tts").json()
    assert tts["default_chain"] == ["coqui", "espeak"] and tts["engines"]["coqui"]["canary"][0]["ok"] is True

    short = speak(coqui_service, "Hello there.")
    assert short.headers["x-tts-engine"] == "coqui" and short.headers["x-tts-fallback"] == "false"
    audio = decode_wav(short.content)
    assert audio.sample_rate == 22050 and audio.channels == 1 and audio.seconds > 0.1
    # random weights give quiet noise: not silence is all that can be asked of it
    assert audio.rms > 5 and int(abs(audio.samples.astype("int32")).max()) > 100
    # three sentences: three chunks of the same length, stitched with pauses (random weights say nothing
    # about how length follows the words of one sentence)
    three = decode_wav(speak(coqui_service, "Hello there. Hello there. Hello there.").content)
    assert 3 * audio.seconds < three.seconds < 3 * audio.seconds + 0.5


def test_coqui_formats_and_speed(coqui_service):
    text = "A tiny model says this at two speeds."
    normal = decode_wav(speak(coqui_service, text).content)
    fast = decode_wav(speak(coqui_service, text, speed=2.0).content)  # VITS here has no speed: time-stretched
    assert 1.7 < normal.seconds / fast.seconds < 2.3
    mp3 = speak(coqui_service, text, response_format="mp3")
    assert mp3.headers["content-type"] == "audio/mpeg"
    assert abs(decode_with_ffmpeg(mp3.content).seconds - normal.seconds) < 0.15


def test_multi_speaker_multi_lingual_model_exposes_speakers_and_languages_as_voices(tmp_path):
    if not _coqui_installed():
        (pytest.fail if os.environ.get("CI") else pytest.skip)("coqui-tts is not installed (make coqui)")
    model = tmp_path / "tiny-multi"
    model.mkdir()
    subprocess.run([sys.executable, "-c", BUILD, str(model), "alice,bob", "en,fr"], check=True,
                   capture_output=True, timeout=300)
    env = {"ENGINES": "coqui,espeak", "COQUI_MODEL_PATH": str(model / "model.pth"),
           "COQUI_CONFIG_PATH": str(model / "config.json"), "DEFAULT_VOICE": "coqui:tiny-multi/alice@en"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        proc.wait_ready(timeout=180)
        voices = httpx.get(proc.url + "/api/voices?engine=coqui").json()["voices"]
        assert [(v["id"], v["language"]) for v in voices] == [
            ("coqui:tiny-multi/alice@en", "en"), ("coqui:tiny-multi/alice@fr", "fr"),
            ("coqui:tiny-multi/bob@en", "en"), ("coqui:tiny-multi/bob@fr", "fr")]
        french = httpx.get(proc.url + "/api/voices?language=fr&engine=coqui").json()["voices"]
        assert {v["id"] for v in french} == {"coqui:tiny-multi/alice@fr", "coqui:tiny-multi/bob@fr"}
        alice = speak(proc, "Les memes mots.", voice="coqui:tiny-multi/alice@fr")
        bob = speak(proc, "Les memes mots.", voice="coqui:tiny-multi/bob@fr")
        alice_en = speak(proc, "Les memes mots.", voice="coqui:tiny-multi/alice@en")
        assert {r.headers["x-tts-engine"] for r in (alice, bob, alice_en)} == {"coqui"}
        # each speaker and each language has its own embedding, so the same text sounds different
        assert len({alice.content, bob.content, alice_en.content}) == 3
    finally:
        proc.stop()


def test_coqui_synthesises_in_parallel_in_its_worker_processes(tiny_vits, tmp_path):
    """Coqui's model is not shared between threads (one synthesis at a time per copy); with
    ``ENGINE_ISOLATION=process`` each worker process has its own copy, so two jobs speak at once."""
    from runtime.speech.engines.isolated import ProcessIsolated
    from tests.isolation_engines import RecordingCoqui, assert_spoken_in_parallel

    args = (str(tmp_path), str(tiny_vits / "model.pth"), str(tiny_vits / "config.json"))
    engine = ProcessIsolated(RecordingCoqui(*args), "tests.isolation_engines:recording_coqui", args, processes=2)
    try:
        engine.load()
        texts = [" ".join(["first"] * 80) + ".", " ".join(["second"] * 80) + "."]  # long enough to overlap
        assert_spoken_in_parallel(engine, texts, "tiny-vits", tmp_path, min_seconds=0.1)  # (noise: any length)
    finally:
        engine.close()
