"""The backup job: ``storage.backup`` into ``DATA_DIR/backups``, keeping ``BACKUP_KEEP`` copies."""

from __future__ import annotations

from storage.backup import backup


def run(ctx) -> dict:
    s = ctx.settings
    return backup(s.database_url, s.data_dir / "backups", s.backup_keep)
