"""Security: the one client-address rule, admins (Argon2 passwords, sessions, TOTP), API keys, the ``auth``
and ``rate_limit`` option layers, login throttling, CORS and the audit log. ``Security`` holds what one
process needs, built from the settings; the stores use the database the models are bound to."""

from __future__ import annotations

from runtime.security.addresses import AddressRule, parse_networks
from runtime.security.keys import KeyStore
from runtime.security.passwords import Passwords
from runtime.security.sessions import Sessions


class Security:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.addresses = AddressRule(parse_networks(settings.trusted_proxies, "TRUSTED_PROXIES"))
        self.admin_networks = parse_networks(settings.admin_allowed_cidrs, "ADMIN_ALLOWED_CIDRS")
        self.keys = KeyStore()
        self.sessions = Sessions(settings.session_idle_s, settings.session_max_s)
        self._passwords: Passwords | None = None

    @property
    def passwords(self) -> Passwords:
        """Built on first use: the dummy hash it makes costs one Argon2 run (~65 MB, tens of ms)."""
        if self._passwords is None:
            s = self.settings
            self._passwords = Passwords(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)
        return self._passwords
