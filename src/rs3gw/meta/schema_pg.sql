-- rs3gw metadata schema v2 (PostgreSQL; v2 added object_access); the same tables as schema.sql (SQLite).
-- Keys are bytea of UTF-8 so ORDER BY is S3's byte order whatever the database collation.
-- Metadata and segments are the same compact JSON text the SQLite store writes.

CREATE TABLE IF NOT EXISTS buckets (
    name text PRIMARY KEY,
    owner_id text NOT NULL,
    created double precision NOT NULL,
    region text NOT NULL,
    versioning text NOT NULL DEFAULT ''
);

-- One row per object version; seq orders versions of a key (higher = newer).
CREATE TABLE IF NOT EXISTS objects (
    bucket text NOT NULL,
    key bytea NOT NULL,
    seq bigint NOT NULL,
    version_id text NOT NULL,
    is_latest boolean NOT NULL,
    delete_marker boolean NOT NULL DEFAULT false,
    size bigint NOT NULL,
    etag text NOT NULL,
    last_modified double precision NOT NULL,
    owner_id text NOT NULL,
    parts_count integer NOT NULL DEFAULT 0,
    meta text NOT NULL,
    segments text NOT NULL,
    PRIMARY KEY (bucket, key, seq)
);

-- At most one latest version per key, enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS objects_latest ON objects (bucket, key) WHERE is_latest;
CREATE INDEX IF NOT EXISTS objects_listing ON objects (bucket, key) WHERE is_latest AND NOT delete_marker;
CREATE UNIQUE INDEX IF NOT EXISTS objects_version ON objects (bucket, key, version_id);

-- ``seq`` is creation order: several uploads may share a key and list oldest first.
CREATE TABLE IF NOT EXISTS uploads (
    upload_id text PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    bucket text NOT NULL,
    key bytea NOT NULL,
    initiated double precision NOT NULL,
    owner_id text NOT NULL,
    meta text NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, seq);

CREATE TABLE IF NOT EXISTS parts (
    upload_id text NOT NULL,
    part_number integer NOT NULL,
    size bigint NOT NULL,
    etag text NOT NULL,
    last_modified double precision NOT NULL,
    blob_id text NOT NULL,
    checksums text NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- Blobs no longer referenced, deleted after commit; survives crashes so nothing leaks.
CREATE TABLE IF NOT EXISTS blob_gc (
    blob_id text PRIMARY KEY,
    queued double precision NOT NULL
);

-- Per-bucket configuration documents (tagging, CORS, lifecycle, ...), one row per kind.
CREATE TABLE IF NOT EXISTS bucket_config (
    bucket text NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (bucket, name)
);

-- Server-wide documents by kind (store-managed users and access keys), one row per name.
CREATE TABLE IF NOT EXISTS server_docs (
    kind text NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Dataset and model registry documents (engine/registry.py); rev is for optimistic concurrency.
CREATE TABLE IF NOT EXISTS registry (
    kind text NOT NULL,
    name text NOT NULL,
    doc text NOT NULL,
    rev bigint NOT NULL,
    PRIMARY KEY (kind, name)
);

-- GET counts per object version (engine/archive.py flushes them in batches), kept out of the
-- metadata document so reads never rewrite it. A row lives only as long as its version: the
-- transaction that removes a version (delete, null-version overwrite) deletes its row too, so a
-- new version reusing the id ('null') starts at zero. Schema v2 (pg_support.MIGRATIONS).
CREATE TABLE IF NOT EXISTS object_access (
    bucket text NOT NULL,
    key bytea NOT NULL,
    version_id text NOT NULL,
    last_access double precision NOT NULL,
    gets bigint NOT NULL,
    PRIMARY KEY (bucket, key, version_id)
);
