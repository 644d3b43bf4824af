"""The full-text index of items' search_text, per database.

PostgreSQL: a GIN index over to_tsvector('simple', search_text), the expression the table's
search filter uses. SQLite: an FTS5 table with the items as its external content (no second copy
of the text), kept in step by triggers, so bulk inserts, updates and cascaded deletes need no code
of ours. Migration 0008 creates them; `sqlite_ensure` runs after every migrate because SQLite
rebuilds a table for most ALTERs (a later migration adding a field to Item), which drops its
triggers; then the index is rebuilt from the items."""
from __future__ import annotations

PG_CREATE = ["CREATE INDEX IF NOT EXISTS item_search_idx ON labeller_item USING gin (to_tsvector('simple', search_text))"]
PG_DROP = ["DROP INDEX IF EXISTS item_search_idx"]

SQLITE_TRIGGERS = {
    "labeller_item_fts_ai": "AFTER INSERT ON labeller_item BEGIN "
    "INSERT INTO labeller_item_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "labeller_item_fts_ad": "AFTER DELETE ON labeller_item BEGIN "
    "INSERT INTO labeller_item_fts(labeller_item_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "labeller_item_fts_au": "AFTER UPDATE OF search_text ON labeller_item BEGIN "
    "INSERT INTO labeller_item_fts(labeller_item_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO labeller_item_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
}
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS] + ["DROP TABLE IF EXISTS labeller_item_fts"]


def sqlite_ensure(cursor) -> bool:
    """Create the FTS5 table and its triggers where missing; rebuild the index if anything was.
    True if something had to be (re)created."""
    cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE 'labeller_item%'")
    present = {row[0] for row in cursor.fetchall()}
    if "labeller_item" not in present:
        return False  # migrations have not created the items yet
    missing = [name for name in ["labeller_item_fts", *SQLITE_TRIGGERS] if name not in present]
    if not missing:
        return False
    cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS labeller_item_fts "
                   "USING fts5(search_text, content='labeller_item', content_rowid='id')")
    for name, body in SQLITE_TRIGGERS.items():
        cursor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    cursor.execute("INSERT INTO labeller_item_fts(labeller_item_fts) VALUES ('rebuild')")
    return True


def create(schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        for sql in PG_CREATE:
            schema_editor.execute(sql)
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            sqlite_ensure(cursor)


def drop(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in PG_DROP if vendor == "postgresql" else SQLITE_DROP if vendor == "sqlite" else []:
        schema_editor.execute(sql)
