"""Argon2id at the parameters the design names, re-hashing when they change, and the password rules."""

from __future__ import annotations

import pytest

from runtime.security.passwords import Passwords, WeakPassword, check_rules

GOOD = "violet tractor sings quietly"


def test_hashes_are_argon2id_with_the_design_parameters():
    stored = Passwords().hash(GOOD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    assert Passwords().verify(stored, GOOD) and not Passwords().verify(stored, GOOD + "!")
    assert not Passwords().verify(None, GOOD)  # an unknown account never verifies
    assert not Passwords().verify("not a hash", GOOD)


def test_a_hash_made_with_other_parameters_needs_rehashing():
    old = Passwords(time_cost=2).hash(GOOD)
    stronger = Passwords(time_cost=3)
    assert stronger.needs_rehash(old) and not stronger.needs_rehash(stronger.hash(GOOD))
    assert stronger.verify(old, GOOD)  # the old hash still logs in, then gets replaced


@pytest.mark.parametrize(("password", "why"), [
    ("short pass", "at least 12"),
    ("x" * 129, "at most 128"),
    ("password1234", "common"),
    ("qwertyuiop123", "common"),
    ("aaaaaaaaaaaaaaaa", "common"),
    ("alice-the-admin-2024", "user's name"),
])
def test_weak_passwords_are_refused_with_a_reason(password, why):
    with pytest.raises(WeakPassword, match=why):
        check_rules(password, "alice")


def test_long_phrases_pass_without_composition_rules():
    check_rules(GOOD, "alice")  # no digits, no capitals, no symbols: length and rarity are what count
    check_rules("é" * 3 + " " + "lunar bakery orbit " * 6, "alice")  # long, any characters, up to 128
