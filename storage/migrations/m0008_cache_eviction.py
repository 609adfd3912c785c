"""Cache eviction: pinned phrases (kept whatever their age; pinned by key, or by text + voice + format),
and the sentence keys of a running job (which eviction must not delete under it)."""

STATEMENTS = [
    """CREATE TABLE cache_pins (
        key VARCHAR(64) PRIMARY KEY,
        format VARCHAR(8) NOT NULL,
        text TEXT,
        voice VARCHAR(200),
        note TEXT,
        pinned_by VARCHAR(200) NOT NULL,
        pinned_at TIMESTAMP NOT NULL
    )""",
    "ALTER TABLE jobs ADD COLUMN chunk_keys TEXT",
]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
