"""A pinned phrase keeps the speed it was pinned with, so it can be rendered again (same text, voice, format
and speed) when its engine's model changes."""

STATEMENTS = ["ALTER TABLE cache_pins ADD COLUMN speed REAL"]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
