-- rs3gw metadata schema v2 (SQLite; v2 added object_access). Keys are BLOBs of UTF-8 so ORDER BY is S3's byte order.
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    created REAL NOT NULL,
    region TEXT NOT NULL,
    versioning TEXT NOT NULL DEFAULT ''
);

-- One row per object version; seq orders versions of a key (higher = newer).
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    seq INTEGER NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    owner_id TEXT NOT NULL,
    parts_count INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL,
    segments TEXT NOT NULL,
    PRIMARY KEY (bucket, key, seq)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS objects_latest ON objects (bucket, key) WHERE is_latest = 1;
CREATE INDEX IF NOT EXISTS objects_version ON objects (bucket, key, version_id);

CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated REAL NOT NULL,
    owner_id TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated);

CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    blob_id TEXT NOT NULL,
    checksums TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;

-- Blobs no longer referenced, deleted after commit; survives crashes so nothing leaks.
CREATE TABLE IF NOT EXISTS blob_gc (
    blob_id TEXT PRIMARY KEY,
    queued REAL NOT NULL
);

-- Per-bucket configuration documents (tagging, CORS, lifecycle, ...), one row per kind.
CREATE TABLE IF NOT EXISTS bucket_config (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID;

-- Server-wide documents by kind (store-managed users and access keys), one row per name.
CREATE TABLE IF NOT EXISTS server_docs (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- Dataset and model registry documents (engine/registry.py); rev is for optimistic concurrency.
CREATE TABLE IF NOT EXISTS registry (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    rev INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- GET counts per object version (engine/archive.py flushes them in batches), kept out of the
-- metadata document so reads never rewrite it. A row lives only as long as its version: the
-- transaction that removes a version (delete, null-version overwrite) deletes its row too, so a
-- new version reusing the id ("null") starts at zero. Added in schema v2; CREATE IF NOT EXISTS
-- gives it to older databases on open.
CREATE TABLE IF NOT EXISTS object_access (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    version_id TEXT NOT NULL,
    last_access REAL NOT NULL,
    gets INTEGER NOT NULL,
    PRIMARY KEY (bucket, key, version_id)
) WITHOUT ROWID;
