"""PCM audio and its encodings. WAV by the standard library; other formats by pydub + ffmpeg.

ffmpeg comes from the ``imageio-ffmpeg`` wheel unless ``FFMPEG_BINARY`` names another one, so no system
package is needed.
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass

import numpy as np

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}
FORMATS = tuple(CONTENT_TYPES)


@dataclass(frozen=True)
class Pcm:
    """Mono signed 16-bit little-endian samples."""

    samples: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / 2 / self.sample_rate

    def peak(self) -> int:
        if not self.samples:
            return 0
        return int(np.abs(np.frombuffer(self.samples, dtype="<i2").astype(np.int32)).max())

    @staticmethod
    def join(parts: list[Pcm], gap_s: float = 0.0) -> Pcm:
        """Concatenate chunks of one sample rate, with ``gap_s`` seconds of silence between them."""
        if not parts:
            raise ValueError("nothing to join")
        rate = parts[0].sample_rate
        if any(p.sample_rate != rate for p in parts):
            raise ValueError("cannot join audio of different sample rates")
        gap = b"\x00\x00" * int(rate * gap_s)
        return Pcm(gap.join(p.samples for p in parts), rate)


def ffmpeg_path() -> str:
    explicit = os.environ.get("FFMPEG_BINARY")
    if explicit:
        return explicit
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(pcm: Pcm, fmt: str) -> bytes:
    """Encode ``pcm`` as ``fmt`` (one of ``FORMATS``)."""
    if fmt == "wav":
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(pcm.sample_rate)
            w.writeframes(pcm.samples)
        return buf.getvalue()
    if fmt == "mp3":
        from pydub import AudioSegment

        AudioSegment.converter = ffmpeg_path()
        seg = AudioSegment(data=pcm.samples, sample_width=2, frame_rate=pcm.sample_rate, channels=1)
        out = io.BytesIO()
        seg.export(out, format="mp3", bitrate="64k")
        return out.getvalue()
    raise ValueError(f"unknown format {fmt!r}")
