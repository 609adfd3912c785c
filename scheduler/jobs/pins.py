"""Pinned phrases follow their engine's model: a phrase pinned by text whose key (text, voice, format, speed
and the model's identity) is no longer what the current model would make gets the new key and is rendered
now, so the announcement is ready before anyone asks; the old audio is unpinned and ages out."""

from __future__ import annotations

from loguru import logger

from runtime.speech.request import from_synthesize
from storage.models import CachePin


def rerender(ctx) -> dict:
    pins = [p for p in CachePin.select() if p.text]
    if not pins:
        return {"pins_rerendered": 0}
    speech = _speech(ctx)
    moved = 0
    for pin in pins:
        try:
            req = from_synthesize({"text": pin.text, "voice": pin.voice, "format": pin.format, "speed": pin.speed},
                                  speech.catalog, 1_000_000)
        except Exception as exc:  # the voice is gone: keep the pin as it is, say why
            logger.warning("pinned phrase {} cannot be rendered again: {}", pin.key, exc)
            continue
        key = speech.key(req)
        if key == pin.key:
            continue
        CachePin.update(key=key).where(CachePin.key == pin.key).execute()
        if not speech.cache.exists(key, req.format):
            speech.submit(req, "scheduler:pins")
        logger.info("pinned phrase re-rendered for a changed model: {} -> {}", pin.key, key)
        moved += 1
    return {"pins_rerendered": moved}


def _speech(ctx):
    if ctx.services is not None:
        return ctx.services.speech
    # python -m scheduler: the engines' identities (model file hashes) without loading a model, and a
    # sender of synthesis messages
    from runtime.events import JobEvents
    from runtime.speech.engines import build_engines
    from runtime.speech.service import SpeechService
    from runtime.speech.voices import VoiceCatalog
    from scheduler.jobs.reap import _enqueue
    from storage.cache import AudioCache

    s = ctx.settings
    engines = build_engines(s)
    return SpeechService(engines, VoiceCatalog(engines, s), AudioCache(s.cache_dir), JobEvents(s.redis_url),
                         _enqueue(s), s.queue_max_depth)
