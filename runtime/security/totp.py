"""Optional TOTP second factor for admins (pyotp; RFC 6238, 30 s steps, 6 digits, ±1 step of clock drift)
and one-time recovery codes. Enrolment shows the ``otpauth://`` URI and its QR code (segno, SVG); it takes
effect once a code from the app is verified. A code is accepted once (its time step is remembered).
Recovery codes: 10 codes of 80 random bits, shown once, stored as SHA-256 digests, each usable once."""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp
import segno

ISSUER = "ef speech functions"
RECOVERY_CODES = 10


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    return segno.make(text, error="m").svg_inline(scale=4)


def verify(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to, if it is valid now and newer than ``last_step``; else None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    for step in (now, now - 1, now + 1):
        if (last_step is None or step > last_step) and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def recovery_codes() -> tuple[list[str], list[str]]:
    """(codes to show once, digests to store)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(10)  # 80 bits
        codes.append("-".join(raw[i:i + 5] for i in range(0, 20, 5)))
    return codes, [recovery_digest(code) for code in codes]


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").replace(" ", "").encode()).hexdigest()
