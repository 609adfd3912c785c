"""Admin passwords: Argon2id hashes (argon2-cffi) and the password rules.

Hash parameters: time_cost 2, memory 65,536 KiB, parallelism 1 by default (``ARGON2_*`` settings can raise
them); a hash made with other parameters is replaced at the next successful login (``needs_rehash``).

Rules (OWASP ASVS 5.0, 6.2): at least 12 characters, up to 128 accepted, no composition rules; refused when
it is a common or easily guessed password — zxcvbn's estimate (its dictionaries hold the 30,000 most common
passwords, names and words; its patterns catch keyboard walks, repeats, dates and l33t) must reach 3 of 4
(at least 10^8 guesses), with the user's own name counted as known to an attacker.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 128
_STRENGTH_CHECKED = 64  # zxcvbn's time grows fast with length; past 64 characters length alone is strength


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which and what to do."""


class Passwords:
    def __init__(self, time_cost: int = 2, memory_kib: int = 65536, parallelism: int = 1) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                      type=Type.ID)
        # Verified against when the account does not exist, so an unknown name costs the same time as a wrong
        # password (no user enumeration by timing).
        self._dummy = self._hasher.hash("not a password: makes unknown names as slow as known ones")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def check_rules(password: str, username: str = "") -> None:
    """Raise ``WeakPassword`` unless ``password`` may be used."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters (a few words make a good one)")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPassword("a password must not contain the user's name")
    result = zxcvbn(password[:_STRENGTH_CHECKED], user_inputs=[username, "ef", "speech", "admin", "tts"])
    if result["score"] < 3:
        hint = result["feedback"].get("warning") or "It is too easy to guess."
        raise WeakPassword(f"this password is too common or easy to guess: {hint} "
                           "Use a longer phrase of uncommon words.")
