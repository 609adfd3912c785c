"""Database models. The jobs table is the source of truth for synthesis; the broker is only transport.

Times are UTC datetimes. Tables are keyed by names and content keys, never by code versions, so rolling
back a function never rolls back data.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    FloatField,
    IntegerField,
    Model,
    TextField,
)

from storage.db import proxy

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
ACTIVE_STATES = (QUEUED, RUNNING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = proxy


class Job(BaseModel):
    """One synthesis request. ``key`` is the requested cache key; ``audio_key`` the file that answered it
    (differs from ``key`` when a fallback engine spoke)."""

    id = CharField(primary_key=True, max_length=32)
    key = CharField(max_length=64, index=True)
    status = CharField(max_length=16, default=QUEUED, index=True)
    text = TextField()
    voice = CharField(max_length=200)
    format = CharField(max_length=8)
    speed = FloatField(default=1.0)
    audio_key = CharField(max_length=64, null=True)
    engine = CharField(max_length=32, null=True)  # engine that produced the audio
    fallback = BooleanField(default=False)
    from_cache = BooleanField(default=False)  # answered from cache without synthesis
    error = TextField(null=True)
    attempts = IntegerField(default=0)
    worker_id = CharField(max_length=100, null=True)
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    audio_seconds = FloatField(null=True)
    chunks_total = IntegerField(default=1)
    chunks_done = IntegerField(default=0)
    chunks_cached = IntegerField(default=0)
    caller = CharField(max_length=200, null=True)  # runtime.callers: ip:<address> or key:<id>
    speaking_voice = CharField(max_length=200, null=True)  # the voice of the chain in use now
    chunk_keys = TextField(null=True)  # comma-separated sentence keys of a multi-sentence job (eviction spares them)
    function = CharField(max_length=200, null=True)  # the function and version that asked: openai_speech@3

    class Meta:
        table_name = "jobs"


class JobState(NamedTuple):
    id: str
    status: str
    speaking_voice: str | None
    error: str | None
    audio_key: str | None
    format: str
    engine: str | None
    fallback: bool
    from_cache: bool


_STATE_SQL: dict[type, str] = {}  # database class (SQL dialect) -> the state query


def job_state(job_id: str) -> JobState | None:
    """A job's status, the voice it speaks with, its error or its audio: what a waiting request looks at
    each time it wakes. The SQL is built by Peewee once per kind of database, not per look (building a query
    costs more Python than running it), and the row's long columns (the text) are never read."""
    db = proxy.obj
    sql = _STATE_SQL.get(type(db))
    if sql is None:
        sql, _ = Job.select(*(getattr(Job, name) for name in JobState._fields)).where(Job.id == "?").sql()
        _STATE_SQL[type(db)] = sql
    row = db.execute_sql(sql, (job_id,)).fetchone()
    if not row:
        return None
    state = JobState(*row)
    return state._replace(fallback=bool(state.fallback), from_cache=bool(state.from_cache))


class CacheEntry(BaseModel):
    key = CharField(primary_key=True, max_length=64)
    format = CharField(max_length=8)
    path = TextField()  # relative to the cache directory
    size_bytes = BigIntegerField()
    engine = CharField(max_length=32)
    voice = CharField(max_length=200)
    audio_seconds = FloatField()
    created_at = DateTimeField(default=utcnow)
    last_access_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "cache_entries"


class CachePin(BaseModel):
    """A phrase the cache keeps whatever its age or the size cap (announcements, doorbell phrases)."""

    key = CharField(primary_key=True, max_length=64)
    format = CharField(max_length=8)
    text = TextField(null=True)  # when pinned by text + voice + format
    voice = CharField(max_length=200, null=True)
    speed = FloatField(null=True)
    note = TextField(null=True)
    pinned_by = CharField(max_length=200)
    pinned_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "cache_pins"


class WorkerHeartbeat(BaseModel):
    """A live worker process writes its row every ``WORKER_HEARTBEAT_S``."""

    id = CharField(primary_key=True, max_length=100)
    hostname = CharField(max_length=200)
    pid = IntegerField()
    started_at = DateTimeField(default=utcnow)
    heartbeat_at = DateTimeField(default=utcnow)
    engines = TextField(default="")  # comma-separated engines loaded and ready

    class Meta:
        table_name = "workers"


class EngineProbe(BaseModel):
    """The latest canary synthesis of an engine in one worker process."""

    engine = CharField(max_length=32)
    worker_id = CharField(max_length=100)
    ok = BooleanField()
    latency_s = FloatField()
    error = TextField(null=True)
    probed_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "engine_probes"
        primary_key = CompositeKey("engine", "worker_id")


class Admin(BaseModel):
    """An administrator. ``password_hash`` is an Argon2id hash; ``totp_secret`` is set once TOTP is verified
    (``totp_pending`` during enrolment); ``recovery_codes`` is a JSON list of SHA-256 digests of unused codes."""

    name = CharField(primary_key=True, max_length=64)
    password_hash = TextField()
    disabled = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    password_changed_at = DateTimeField(default=utcnow)
    totp_secret = CharField(max_length=64, null=True)
    totp_pending = CharField(max_length=64, null=True)
    totp_last_step = BigIntegerField(null=True)  # the last TOTP time step accepted: a code works once
    recovery_codes = TextField(null=True)

    class Meta:
        table_name = "admins"


class AdminSession(BaseModel):
    """A logged-in admin. ``id`` is the SHA-256 of the cookie's token (the token itself is never stored)."""

    id = CharField(primary_key=True, max_length=64)
    admin = CharField(max_length=64, index=True)
    csrf_digest = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()  # the absolute end (SESSION_MAX_S after login)
    client = CharField(max_length=64)

    class Meta:
        table_name = "admin_sessions"


class ApiKey(BaseModel):
    """An API key: the SHA-256 ``digest`` of the token, never the token; ``prefix`` is what lists show."""

    id = CharField(primary_key=True, max_length=16)
    name = CharField(max_length=100)
    prefix = CharField(max_length=16)
    digest = CharField(max_length=64, unique=True)
    level = CharField(max_length=8)  # key | admin
    created_by = CharField(max_length=100)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    last_used_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class AuditEvent(BaseModel):
    """One line of the audit log: appended by ``runtime.security.audit``, never changed by the application."""

    id = AutoField()
    at = DateTimeField(default=utcnow, index=True)
    actor = CharField(max_length=200)  # admin:<name>, key:<id>, cli:<user>, or anonymous
    client = CharField(max_length=64)
    action = CharField(max_length=64, index=True)
    target = CharField(max_length=200, default="")
    outcome = CharField(max_length=16)  # success | failure | denied | throttled
    details = TextField(default="{}")  # JSON

    class Meta:
        table_name = "audit_log"


class LoginFailure(BaseModel):
    """Failed logins counted per throttling scope (``pair:<name>|<address>``, ``address:<address>``)."""

    scope = CharField(primary_key=True, max_length=200)
    failures = IntegerField(default=0)
    last_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "login_failures"


class SchedulerLease(BaseModel):
    """Who leads the scheduler: the instance whose lease has not expired runs the jobs."""

    name = CharField(primary_key=True, max_length=64)
    holder = CharField(max_length=200)
    acquired_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()

    class Meta:
        table_name = "scheduler_lease"


class SchedulerRun(BaseModel):
    """One run of a scheduled job: ``requested`` (run now, waiting), ``running``, ``success`` or ``failure``."""

    id = AutoField()
    job = CharField(max_length=64)
    requested_by = CharField(max_length=200, null=True)
    holder = CharField(max_length=200, null=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    outcome = CharField(max_length=16)
    figures = TextField(default="{}")  # JSON: what the run did (files removed, bytes freed, …)
    error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "scheduler_runs"


class FunctionVersion(BaseModel):
    """One immutable version of a function module: its source and the options a deploy overrode (JSON)."""

    id = AutoField()
    module = CharField(max_length=200)
    version = IntegerField()
    sha256 = CharField(max_length=64)
    source = TextField()
    options = TextField(default="{}")
    origin = CharField(max_length=16)  # shipped (a file in functions/) or deploy
    created_by = CharField(max_length=200)
    created_at = DateTimeField(default=utcnow)
    note = TextField(default="")

    class Meta:
        table_name = "function_versions"


class FunctionPointer(BaseModel):
    """Which version of a module serves: ``active``, and ``canary`` for ``canary_pct`` % of callers."""

    module = CharField(primary_key=True, max_length=200)
    active = IntegerField()
    previous = IntegerField(null=True)  # what ``rollback`` without --to returns to
    canary = IntegerField(null=True)
    canary_pct = IntegerField(default=0)
    generation = IntegerField(default=1)
    changed_by = CharField(max_length=200)
    changed_at = DateTimeField(default=utcnow)
    reason = TextField(default="")

    class Meta:
        table_name = "function_pointers"


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    applied_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "schema_version"


ALL_MODELS = (Job, CacheEntry, WorkerHeartbeat, SchemaVersion)
