"""A job records the function and version that asked for it (``openai_speech@3``): after a deploy or a
canary, the jobs say which code created them."""

STATEMENTS = ["ALTER TABLE jobs ADD COLUMN function VARCHAR(200)"]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
