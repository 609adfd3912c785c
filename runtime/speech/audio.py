"""PCM audio and its encodings. WAV by the standard library; other formats by pydub + ffmpeg.

ffmpeg comes from the ``imageio-ffmpeg`` wheel unless ``FFMPEG_BINARY`` names another one, so no system
package is needed.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import warnings
import wave
from dataclasses import dataclass

import numpy as np

# format → (content type, pydub export arguments). OpenAI's set; ``pcm`` is raw 16-bit little-endian mono
# at 24 kHz, as OpenAI documents it and its clients assume.
_ENCODINGS: dict[str, tuple[str, dict]] = {
    "mp3": ("audio/mpeg", {"format": "mp3", "codec": "libmp3lame", "bitrate": "64k"}),
    "opus": ("audio/ogg", {"format": "opus", "codec": "libopus", "bitrate": "32k"}),  # Ogg Opus, 48 kHz
    "aac": ("audio/aac", {"format": "adts", "codec": "aac", "bitrate": "64k"}),
    "flac": ("audio/flac", {"format": "flac"}),
    "wav": ("audio/wav", {}),  # written by the standard library
    "pcm": ("audio/pcm", {"format": "s16le", "parameters": ["-ar", "24000"]}),
}
FORMATS = tuple(_ENCODINGS)
# MaryTTS's other codecs (Home Assistant's marytts platform offers them): converted from the cached WAV for
# the answer, never cached themselves; 16-bit big-endian PCM as MaryTTS writes them
_ENCODINGS.update({
    "au": ("audio/basic", {"format": "au", "codec": "pcm_s16be"}),
    "aiff": ("audio/aiff", {"format": "aiff", "codec": "pcm_s16be"}),
})
CONTENT_TYPES = {fmt: ctype for fmt, (ctype, _) in _ENCODINGS.items()}
PCM_RATE = 24_000


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

    def louder(self, gain: float) -> Pcm:
        """The samples times ``gain``, clipped to 16 bits."""
        samples = np.frombuffer(self.samples, dtype="<i2").astype(np.float64) * gain
        return Pcm(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes(), self.sample_rate)

    @staticmethod
    def silence(seconds: float, rate: int) -> Pcm:
        return Pcm(b"\x00\x00" * int(seconds * rate), rate)

    @staticmethod
    def concat(parts: list[Pcm | float]) -> Pcm:
        """Audio chunks and pauses (floats, in seconds) in order; pauses become silence at the chunks' rate."""
        audio = [p for p in parts if isinstance(p, Pcm)]
        if not audio:
            raise ValueError("nothing to join")
        rate = audio[0].sample_rate
        if any(p.sample_rate != rate for p in audio):
            raise ValueError("cannot join audio of different sample rates")
        return Pcm(b"".join(p.samples if isinstance(p, Pcm) else b"\x00\x00" * int(rate * p) for p in parts), rate)

    def faded(self, fade_s: float = 0.005) -> Pcm:
        """Linear fade in and out over ``fade_s`` seconds, so joined chunks start and end at silence
        (no clicks where two chunks meet)."""
        samples = np.frombuffer(self.samples, dtype="<i2")
        n = min(int(self.sample_rate * fade_s), len(samples) // 2)
        if n <= 0:
            return self
        ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        out = bytearray(self.samples)  # only the edges change: no float copy of the whole chunk
        edges = np.frombuffer(out, dtype="<i2")
        edges[:n] = np.round(samples[:n] * ramp)
        edges[len(samples) - n:] = np.round(samples[len(samples) - n:] * ramp[::-1])
        return Pcm(bytes(out), self.sample_rate)

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


def decode_wav(data: bytes) -> Pcm:
    """A mono 16-bit WAV (as ``encode(pcm, "wav")`` writes) back to PCM."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("expected mono 16-bit WAV")
        return Pcm(w.readframes(w.getnframes()), w.getframerate())


def ffmpeg_path() -> str:
    explicit = os.environ.get("FFMPEG_BINARY")
    if explicit:
        return explicit
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _pydub():
    with warnings.catch_warnings():  # pydub looks for ffmpeg on PATH at import; we give it the wheel's
        warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
        from pydub import AudioSegment

    AudioSegment.converter = ffmpeg_path()
    return AudioSegment


def encode(pcm: Pcm, fmt: str) -> bytes:
    """Encode ``pcm`` as ``fmt`` (one of ``FORMATS``, or MaryTTS's ``au`` and ``aiff``)."""
    if fmt == "wav":
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(pcm.sample_rate)
            w.writeframes(pcm.samples)
        return buf.getvalue()
    if fmt not in _ENCODINGS:
        raise ValueError(f"unknown format {fmt!r}")
    AudioSegment = _pydub()
    seg = AudioSegment(data=pcm.samples, sample_width=2, frame_rate=pcm.sample_rate, channels=1)
    out = io.BytesIO()
    seg.export(out, **_ENCODINGS[fmt][1])
    data = out.getvalue()
    if not data:
        raise RuntimeError(f"ffmpeg produced no {fmt} output")
    return data


def stream_encoder_args(fmt: str, sample_rate: int) -> list[str]:
    """ffmpeg arguments that read mono s16le PCM at ``sample_rate`` on stdin and write ``fmt`` to stdout
    as it goes, with the same codec settings as ``encode`` (WAV gets an open-ended header)."""
    if fmt not in _ENCODINGS:
        raise ValueError(f"unknown format {fmt!r}")
    opts = _ENCODINGS[fmt][1]
    out = ["-f", opts.get("format", "wav")]
    if "codec" in opts:
        out += ["-acodec", opts["codec"]]
    if "bitrate" in opts:
        out += ["-b:a", opts["bitrate"]]
    out += opts.get("parameters", [])
    return [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1",
            "-i", "pipe:0", *out, "-flush_packets", "1", "pipe:1"]


def wav_stream_header(sample_rate: int) -> bytes:
    """The header of a mono 16-bit WAV whose length is not known yet: RIFF and data sizes 0xFFFFFFFF, the
    convention of OpenAI's streamed WAV (and of ffmpeg writing WAV to a pipe)."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data\xff\xff\xff\xff"


class PcmResampler:
    """Resamples a stream of s16le chunks to ``rate`` (audioop's ``ratecv``, as pydub does), keeping the
    filter state across chunks so their joins are seamless."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        self._state = None

    def __call__(self, samples: bytes) -> bytes:
        if self.from_rate == self.to_rate:
            return samples
        out, self._state = _audioop().ratecv(samples, 2, 1, self.from_rate, self.to_rate, self._state)
        return out


def _audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python 3.13+: the audioop-lts package
            import audioop_lts as audioop  # type: ignore[no-redef]
    return audioop


def resample(pcm: Pcm, rate: int) -> Pcm:
    """``pcm`` at another sample rate (pydub / audioop), for joining audio of engines with different rates."""
    if pcm.sample_rate == rate:
        return pcm
    seg = _pydub()(data=pcm.samples, sample_width=2, frame_rate=pcm.sample_rate, channels=1)
    return Pcm(seg.set_frame_rate(rate).raw_data, rate)


def time_stretch(pcm: Pcm, factor: float) -> Pcm:
    """Play ``factor`` times faster (0.25-4.0) without changing pitch, with ffmpeg's ``atempo`` filter
    (one stage handles 0.5-2.0, so larger changes chain stages)."""
    if abs(factor - 1.0) < 1e-3:
        return pcm
    stages, rest = [], factor
    while rest > 2.0:
        stages.append(2.0)
        rest /= 2.0
    while rest < 0.5:
        stages.append(0.5)
        rest /= 0.5
    stages.append(rest)
    chain = ",".join(f"atempo={s:.6f}" for s in stages)
    proc = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(pcm.sample_rate),
         "-ac", "1", "-i", "pipe:0", "-filter:a", chain, "-f", "s16le", "-ar", str(pcm.sample_rate), "pipe:1"],
        input=pcm.samples, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"time-stretch failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return Pcm(proc.stdout, pcm.sample_rate)
