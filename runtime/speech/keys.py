"""Cache keys: sha256 over everything that changes the audio bytes."""

from __future__ import annotations

import hashlib
import json


def cache_key(*, engine: str, model_id: str, voice: str, text: str, fmt: str, params: dict) -> str:
    """``engine`` name, ``model_id`` (hash of the model file + engine version), ``voice``, normalised
    ``text``, every audio-changing parameter and the output format."""
    material = json.dumps(
        {"engine": engine, "model": model_id, "voice": voice, "text": text, "format": fmt, "params": params},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
