"""The admin area through HTTP against a real service process: LAN-only by client address (loopback aliases
and a narrowed ADMIN_ALLOWED_CIDRS stand in for the LAN; nothing leaves 127.0.0.0/8 and ::1), sessions,
CSRF, throttling, keys, TOTP, and the audit log. A second service listens on ::1 for an IPv6 client
(asyncio binds "::" IPv6-only, so IPv4-mapped peers are tested on ASGI scopes in test_addresses)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from contextlib import closing

import httpx
import pyotp
import pytest

from tests.support import NginxProxy, ServiceProcess, client_from, run_cli

PASSWORD = "violet tractor sings quietly"
ADMIN_NET = "127.0.0.0/30,::1/128"  # 127.0.0.1-3 and ::1 are "the LAN"; 127.0.0.5 is outside
PROXY = "127.0.0.3"  # TRUSTED_PROXIES


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    proc = ServiceProcess(tmp_path_factory.mktemp("admin") / "data", env={
        "ENGINES": "espeak", "ADMIN_ALLOWED_CIDRS": ADMIN_NET, "TRUSTED_PROXIES": f"{PROXY}/32"})
    done = run_cli(proc, "admin", "create", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    env_file = proc.data_dir / ".env"
    env_file.write_text("SESSION_IDLE_S=1800\n")
    env_file.chmod(0o644)  # readable by others: the service warns at start-up
    proc.start()
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def url(svc, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{svc.port}{path}"


def login(svc, client: httpx.Client, name="alice", password=PASSWORD, **extra) -> httpx.Response:
    return client.post(url(svc, "/api/admin/login"), json={"username": name, "password": password, **extra})


def logged_in(svc, address="127.0.0.1") -> tuple[httpx.Client, str]:
    client = client_from(address)
    answer = login(svc, client)
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]


def audit(svc, **filters) -> list[dict]:
    client, _ = logged_in(svc)
    with closing(client):
        return client.get(url(svc, "/api/admin/audit"), params={"limit": 500, **filters}).json()["events"]


def test_the_password_hash_carries_the_design_parameters(svc):
    with sqlite3.connect(svc.data_dir / "db.sqlite") as db:
        (stored,) = db.execute("SELECT password_hash FROM admins WHERE name = 'alice'").fetchone()
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$")


def test_an_allowed_peer_logs_in(svc):
    client, _ = logged_in(svc)
    with closing(client):
        me = client.get(url(svc, "/api/admin/me"))
        assert me.status_code == 200 and me.json()["actor"] == "admin:alice"
        cookie = me.request.headers["cookie"]
        assert cookie.startswith("ef_session=")
        for name, value in {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                            "cache-control": "no-store"}.items():
            assert me.headers[name] == value
        assert "frame-ancestors 'none'" in me.headers["content-security-policy"]


def test_ipv6_loopback_is_inside_the_admin_network(svc, tmp_path):
    v6 = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak", "HOST": "::1", "ADMIN_ALLOWED_CIDRS": "::1/128",
                                                "DATABASE_URL": f"sqlite:///{svc.data_dir / 'db.sqlite'}"})
    with httpx.Client(timeout=30) as client:
        try:
            v6.start().wait_ready()
            answer = client.post(v6.url + "/api/admin/login", json={"username": "alice", "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            set_cookie = answer.headers["set-cookie"].lower()
            assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/" in set_cookie
            assert "secure" not in set_cookie  # plain HTTP: no Secure flag, no __Host- prefix
            assert client.get(v6.url + "/api/admin/me").status_code == 200
        finally:
            v6.stop()


def test_a_peer_outside_the_admin_network_is_refused_even_with_a_valid_session(svc):
    client, _ = logged_in(svc)
    token = client.cookies["ef_session"]
    client.close()
    with client_from("127.0.0.5") as outsider:
        refused = outsider.get(url(svc, "/api/admin/me"), headers={"Cookie": f"ef_session={token}"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_address_refused"
        assert login(svc, outsider).status_code == 403
        # X-Forwarded-For from a peer that is not a trusted proxy is ignored
        spoofed = outsider.get(url(svc, "/api/admin/me"), headers={
            "Cookie": f"ef_session={token}", "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
        assert spoofed.status_code == 403
        # public functions still answer it
        assert outsider.get(url(svc, "/v1/audio/voices")).status_code == 200


def test_a_trusted_proxy_forwards_the_real_client(svc):
    client, _ = logged_in(svc)
    token = client.cookies["ef_session"]
    client.close()
    with client_from(PROXY, headers={"Cookie": f"ef_session={token}"}) as proxy:
        inside = proxy.get(url(svc, "/api/admin/me"), headers={"X-Forwarded-For": "127.0.0.1"})
        assert inside.status_code == 200
        outside = proxy.get(url(svc, "/api/admin/me"), headers={"X-Forwarded-For": "127.0.0.1, 127.0.0.9"})
        assert outside.status_code == 403  # right to left: 127.0.0.9 is the client, whatever it wrote before
        real_ip = proxy.get(url(svc, "/api/admin/me"), headers={"X-Real-IP": "127.0.0.9"})
        assert real_ip.status_code == 403


def test_sessions_are_new_at_each_login_and_end_at_logout(svc):
    with client_from("127.0.0.1") as client:
        first = client.post(url(svc, "/api/admin/login"), json={"username": "alice", "password": PASSWORD},
                            headers={"Cookie": "ef_session=planted-by-an-attacker"})
        assert first.status_code == 200
        token = first.cookies["ef_session"]
        assert token != "planted-by-an-attacker"  # no fixation: the server made its own
        planted = httpx.get(url(svc, "/api/admin/me"), headers={"Cookie": "ef_session=planted-by-an-attacker"})
        assert planted.status_code == 401 and planted.json()["error"]["code"] == "session_expired"
        assert planted.headers["www-authenticate"].startswith("Bearer")
        assert login(svc, client).status_code == 200 and client.cookies["ef_session"] != token
        csrf = login(svc, client).json()["csrf_token"]
        current = client.cookies["ef_session"]
        out = client.post(url(svc, "/api/admin/logout"), headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200
        after = httpx.get(url(svc, "/api/admin/me"), headers={"Cookie": f"ef_session={current}"})
        assert after.status_code == 401


def test_https_through_a_trusted_proxy_gets_a_secure_host_only_cookie(svc):
    with client_from(PROXY) as proxy:
        answer = proxy.post(url(svc, "/api/admin/login"), json={"username": "alice", "password": PASSWORD},
                            headers={"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"})
        assert answer.status_code == 200
        set_cookie = answer.headers["set-cookie"]
        assert set_cookie.startswith("__Host-ef_session=") and "Secure" in set_cookie and "Domain" not in set_cookie
    with client_from("127.0.0.1") as direct:  # the same header from an untrusted peer changes nothing
        answer = direct.post(url(svc, "/api/admin/login"), json={"username": "alice", "password": PASSWORD},
                             headers={"X-Forwarded-Proto": "https"})
        assert answer.headers["set-cookie"].startswith("ef_session=")


def test_state_changes_with_the_cookie_need_the_csrf_token(svc):
    client, csrf = logged_in(svc)
    with closing(client):
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            refused = client.post(url(svc, "/api/admin/keys"), json={"name": "csrf"}, headers=headers)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        made = client.post(url(svc, "/api/admin/keys"), json={"name": "csrf"}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201
        assert client.get(url(svc, "/api/admin/keys")).status_code == 200  # reads need no token


def test_expired_sessions_are_refused(svc):
    client, _ = logged_in(svc)
    with closing(client):
        assert client.get(url(svc, "/api/admin/me")).status_code == 200
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
        with sqlite3.connect(svc.data_dir / "db.sqlite") as db:  # an hour idle (SESSION_IDLE_S is 30 min)
            db.execute("UPDATE admin_sessions SET last_seen_at = ?", (old.isoformat(" "),))
        expired = client.get(url(svc, "/api/admin/me"))
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "session_expired"


def test_keys_work_until_revoked_or_expired_and_need_the_admin_level(svc):
    client, csrf = logged_in(svc)
    with closing(client):
        def make(**body):
            answer = client.post(url(svc, "/api/admin/keys"), json=body, headers={"X-CSRF-Token": csrf})
            assert answer.status_code == 201, answer.text
            return answer.json()

        admin_key, plain_key = make(name="ops", level="admin"), make(name="app")
        short = make(name="brief", level="admin", expires_days=1)
        assert short["expires_at"]
        assert admin_key["key"].startswith("efk_") and len(admin_key["key"]) >= 40
        listed = client.get(url(svc, "/api/admin/keys")).json()["keys"]
        assert all("key" not in k and "digest" not in k for k in listed)
        assert {k["prefix"] for k in listed} >= {admin_key["prefix"], plain_key["prefix"]}

        def me(key, header="bearer"):
            headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
            return httpx.get(url(svc, "/api/admin/me"), headers=headers)

        assert me(admin_key["key"]).json()["actor"] == f"key:{admin_key['id']}"
        assert me(admin_key["key"], "x-api-key").status_code == 200
        level = me(plain_key["key"])
        assert level.status_code == 403 and level.json()["error"]["code"] == "admin_required"
        assert me("efk_" + "x" * 43).status_code == 401
        # an admin key needs no CSRF token (it is not an ambient credential) but still the admin network
        with client_from("127.0.0.5") as outsider:
            far = outsider.get(url(svc, "/api/admin/me"), headers={"Authorization": f"Bearer {admin_key['key']}"})
            assert far.status_code == 403
        revoked = client.delete(url(svc, f"/api/admin/keys/{admin_key['id']}"), headers={"X-CSRF-Token": csrf})
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        gone = me(admin_key["key"])
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"
        assert me(short["key"]).status_code == 200
        past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
        with sqlite3.connect(svc.data_dir / "db.sqlite") as db:  # its day has passed
            db.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?", (past.isoformat(" "), short["id"]))
        time.sleep(1.2)  # lookups are cached for a second
        expired = me(short["key"])
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "invalid_api_key"


def test_wrong_passwords_are_throttled_and_audited_and_the_admin_still_gets_in(svc):
    with client_from("127.0.0.2") as attacker:
        codes = [login(svc, attacker, password=f"guess number {n}").json()["error"]["code"] for n in range(50)]
    assert codes[:3] == ["login_failed"] * 3
    assert set(codes) == {"login_failed", "login_throttled"}
    # the delay doubles with each failure (1 s, 2 s, 4 s …): 50 quick guesses get only a few checked
    assert codes.count("login_throttled") >= 44, codes
    client, _ = logged_in(svc, "127.0.0.1")  # the real admin, at their own address
    client.close()
    attempts = audit(svc, action="admin.login", actor="login:alice")
    from_attacker = [e["outcome"] for e in attempts if e["client"] == "127.0.0.2"]
    assert from_attacker.count("failure") == codes.count("login_failed")
    assert from_attacker.count("throttled") == codes.count("login_throttled")
    assert all("guess" not in str(e) for e in attempts)  # no password in the audit log


def test_disabling_an_admin_ends_their_sessions_and_a_password_change_ends_the_others(svc):
    run_cli(svc, "admin", "create", "bob", "--password-stdin", stdin="marble harbor lantern quietly\n")
    with client_from("127.0.0.1") as bob, client_from("127.0.0.1") as bob2:
        csrf = login(svc, bob, "bob", "marble harbor lantern quietly").json()["csrf_token"]
        assert login(svc, bob2, "bob", "marble harbor lantern quietly").status_code == 200
        changed = bob.post(url(svc, "/api/admin/password"), headers={"X-CSRF-Token": csrf},
                           json={"current_password": "marble harbor lantern quietly",
                                 "new_password": "copper meadow whistles twice"})
        assert changed.status_code == 200 and changed.json()["other_sessions_ended"] == 1
        assert bob.get(url(svc, "/api/admin/me")).status_code == 200  # this one goes on
        assert bob2.get(url(svc, "/api/admin/me")).status_code == 401
        weak = bob.post(url(svc, "/api/admin/password"), headers={"X-CSRF-Token": csrf},
                        json={"current_password": "copper meadow whistles twice", "new_password": "password1234"})
        assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
        alice, alice_csrf = logged_in(svc)
        with closing(alice):
            off = alice.patch(url(svc, "/api/admin/users/bob"), json={"disabled": True},
                              headers={"X-CSRF-Token": alice_csrf})
            assert off.status_code == 200 and off.json()["disabled"] is True
            self_off = alice.patch(url(svc, "/api/admin/users/alice"), json={"disabled": True},
                                   headers={"X-CSRF-Token": alice_csrf})
            assert self_off.status_code == 409
        assert bob.get(url(svc, "/api/admin/me")).status_code == 401
        assert login(svc, bob, "bob", "copper meadow whistles twice").status_code == 401


def test_totp_enrolment_login_replay_and_recovery_codes(svc):
    run_cli(svc, "admin", "create", "carol", "--password-stdin", stdin="quartz pelican drifts south\n")
    creds = {"name": "carol", "password": "quartz pelican drifts south"}
    with client_from("127.0.0.1") as client:
        csrf = login(svc, client, **creds).json()["csrf_token"]
        enrol = client.post(url(svc, "/api/admin/totp/enrol"), headers={"X-CSRF-Token": csrf}).json()
        assert enrol["otpauth_uri"].startswith("otpauth://totp/") and enrol["qr_svg"].startswith("<svg")
        secret = pyotp.parse_uri(enrol["otpauth_uri"]).secret
        bad = client.post(url(svc, "/api/admin/totp/verify"), json={"code": "000000"},
                          headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 400
        code = pyotp.TOTP(secret).now()
        codes = client.post(url(svc, "/api/admin/totp/verify"), json={"code": code},
                            headers={"X-CSRF-Token": csrf}).json()["recovery_codes"]
        assert len(codes) == 10
    with client_from("127.0.0.1") as client:
        assert login(svc, client, **creds).json()["error"]["code"] == "totp_required"
        replay = login(svc, client, **creds, totp=code)  # the code that verified enrolment works once
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "totp_invalid"
        next_step = pyotp.TOTP(secret).at(time.time() + 30)
        assert login(svc, client, **creds, totp=next_step).status_code == 200
        assert login(svc, client, **creds, totp=codes[0]).status_code == 200
        assert login(svc, client, **creds, totp=codes[0]).status_code == 401  # recovery codes work once
        with sqlite3.connect(svc.data_dir / "db.sqlite") as db:
            (stored,) = db.execute("SELECT recovery_codes FROM admins WHERE name = 'carol'").fetchone()
        assert codes[1] not in stored and codes[1].replace("-", "") not in stored  # stored hashed


def test_the_audit_log_filters_and_pages(svc):
    everything = audit(svc)
    assert {"admin.login", "admin.logout", "key.create", "key.revoke", "admin.create", "admin.disable",
            "admin.password", "admin.totp_on"} <= {e["action"] for e in everything}
    assert all({"at", "actor", "client", "action", "target", "outcome", "details"} <= set(e) for e in everything)
    client, _ = logged_in(svc)
    with closing(client):
        page = client.get(url(svc, "/api/admin/audit"), params={"limit": 5}).json()
        assert len(page["events"]) == 5 and page["next_before"] == page["events"][-1]["id"]
        following = client.get(url(svc, "/api/admin/audit"), params={"limit": 5, "before": page["next_before"]})
        assert following.json()["events"][0]["id"] < page["next_before"]
        created = client.get(url(svc, "/api/admin/audit"), params={"action": "admin.create"}).json()["events"]
        assert {e["target"] for e in created} >= {"alice", "bob", "carol"}
        assert all(e["actor"].startswith("cli:") for e in created)
        future = client.get(url(svc, "/api/admin/audit"), params={"since": "2999-01-01T00:00:00Z"})
        assert future.json()["events"] == []
        bad = client.get(url(svc, "/api/admin/audit"), params={"since": "yesterday"})
        assert bad.status_code == 400


def test_no_secret_reaches_the_log(svc):
    log = svc.log()
    assert "is mode 644" in log and "chmod 600" in log
    assert PASSWORD not in log and "efk_" not in log and "quartz pelican" not in log
    with sqlite3.connect(svc.data_dir / "db.sqlite") as db:
        rows = db.execute("SELECT details FROM audit_log").fetchall()
    assert not any("efk_" in row[0] or PASSWORD in row[0] for row in rows)


def test_cors_is_an_allowlist(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak", "CORS_ORIGINS": "https://ha.example.lan"})
    try:
        proc.start().wait_ready()
        ours = {"Origin": "https://ha.example.lan"}
        preflight = httpx.options(proc.url + "/v1/audio/speech", headers={
            **ours, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://ha.example.lan"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in preflight.headers
        answer = httpx.get(proc.url + "/api/voices", headers=ours)
        assert answer.headers["access-control-allow-origin"] == "https://ha.example.lan"
        assert "x-tts-engine" in answer.headers["access-control-expose-headers"]
        stranger = httpx.get(proc.url + "/api/voices", headers={"Origin": "https://evil.example"})
        assert stranger.status_code == 200 and "access-control-allow-origin" not in stranger.headers
        assert httpx.options(proc.url + "/v1/audio/speech", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}).status_code == 405
    finally:
        proc.stop()


def test_a_login_rehashes_a_password_hashed_with_weaker_parameters(svc, tmp_path):
    stronger = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak", "ARGON2_TIME_COST": "3",
                                                      "DATABASE_URL": f"sqlite:///{svc.data_dir / 'db.sqlite'}"})
    run_cli(svc, "admin", "create", "erin", "--password-stdin", stdin="amber falcon circles east\n")
    try:
        stronger.start().wait_ready()
        answer = httpx.post(stronger.url + "/api/admin/login",
                            json={"username": "erin", "password": "amber falcon circles east"})
        assert answer.status_code == 200
    finally:
        stronger.stop()
    with sqlite3.connect(svc.data_dir / "db.sqlite") as db:
        (stored,) = db.execute("SELECT password_hash FROM admins WHERE name = 'erin'").fetchone()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_through_a_real_nginx_the_client_address_is_the_one_nginx_saw(svc, tmp_path):
    """nginx (a trusted proxy, connecting from 127.0.0.3) appends the address it saw to X-Forwarded-For:
    the admin network is judged by that, and what a client writes into the header itself changes nothing."""
    with NginxProxy(tmp_path / "nginx", svc.port, PROXY) as nginx:
        def attempt(source: str, headers=None) -> int:
            with client_from(source) as client:
                return client.post(nginx.url + "/api/admin/login", headers=headers or {},
                                   json={"username": "nobody", "password": "not the password"}).status_code

        assert attempt("127.0.0.1") == 401  # inside: the login itself answers (wrong credentials)
        assert attempt("127.0.0.5") == 403  # outside, as nginx reports it
        assert attempt("127.0.0.5", {"X-Forwarded-For": "127.0.0.1"}) == 403  # spoofing through the proxy
        assert attempt("127.0.0.5", {"X-Real-IP": "127.0.0.1"}) == 403
        with client_from("127.0.0.1") as client:
            ok = client.post(nginx.url + "/api/admin/login", json={"username": "alice", "password": PASSWORD})
            assert ok.status_code == 200
    events = audit(svc, action="admin.login", actor="login:nobody")
    assert {e["client"] for e in events} == {"127.0.0.1"}  # the audit log records the real client, not nginx
    outside = audit(svc, action="admin.login", actor="anonymous", outcome="denied")
    assert {e["client"] for e in outside} >= {"127.0.0.5"}  # refused attempts from outside are audited too
