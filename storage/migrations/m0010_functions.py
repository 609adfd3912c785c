"""Function deploys: every version of every function module (its source, so every process loads the same
code), and one pointer per module: the active version, an optional canary with its share of traffic, and a
generation that grows with every change (what the processes poll)."""

STATEMENTS = [
    """CREATE TABLE function_versions (
        id {autoincrement},
        module VARCHAR(200) NOT NULL,
        version INTEGER NOT NULL,
        sha256 VARCHAR(64) NOT NULL,
        source TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{{}}',
        origin VARCHAR(16) NOT NULL,
        created_by VARCHAR(200) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE UNIQUE INDEX function_versions_module_version ON function_versions (module, version)",
    """CREATE TABLE function_pointers (
        module VARCHAR(200) PRIMARY KEY,
        active INTEGER NOT NULL,
        previous INTEGER,
        canary INTEGER,
        canary_pct INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 1,
        changed_by VARCHAR(200) NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    )""",
]


def up(db) -> None:
    from storage.db import is_sqlite

    autoincrement = "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite(db) else "BIGSERIAL PRIMARY KEY"
    for sql in STATEMENTS:
        db.execute_sql(sql.format(autoincrement=autoincrement) if "{" in sql else sql)
