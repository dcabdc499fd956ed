/**
 * The schema of `<data_dir>/peers.db` as an ordered list of migrations. `PRAGMA user_version` holds how many have
 * been applied; `Store.open` applies the missing ones in one `BEGIN IMMEDIATE` transaction. Never edit a migration
 * that has shipped: append a new one (a database written by an older declaw must reach the same schema).
 *
 * Tables are STRICT so that a wrong type is refused instead of silently stored; CHECK constraints mirror the string
 * unions of `store.ts`. All times are integer milliseconds since the epoch.
 */

/** `PRAGMA application_id` of a declaw database ("dclw"), so that a foreign SQLite file is refused, not migrated. */
export const APPLICATION_ID = 0x64636c77;

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE peers (
    address TEXT PRIMARY KEY NOT NULL,
    -- NOCASE: "Alice" and "alice" are the same alias for a person typing it
    alias TEXT COLLATE NOCASE UNIQUE,
    public_key TEXT,
    key_binding TEXT CHECK (key_binding IN ('derived', 'tofu', 'user')),
    trust TEXT NOT NULL DEFAULT 'pending' CHECK (trust IN ('trusted', 'pending', 'blocked')),
    port INTEGER NOT NULL DEFAULT 8099 CHECK (port BETWEEN 1 AND 65535),
    protocol INTEGER NOT NULL DEFAULT 2 CHECK (protocol IN (1, 2)),
    first_seen INTEGER NOT NULL,
    last_seen INTEGER,
    last_key_mismatch_at INTEGER,
    last_mismatch_key TEXT,
    CHECK ((public_key IS NULL) = (key_binding IS NULL))
  ) STRICT;
  CREATE INDEX peers_trust ON peers (trust);

  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    ts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'queued', 'sent', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    expires_at INTEGER,
    last_error TEXT,
    receipt TEXT,
    delivered_at INTEGER,
    protocol INTEGER NOT NULL DEFAULT 2 CHECK (protocol IN (1, 2)),
    handled_at INTEGER,
    lease_until INTEGER,
    UNIQUE (direction, peer, id)
  ) STRICT;
  -- inbox/outbox paging, newest first, optionally by peer
  CREATE INDEX messages_dir_seq ON messages (direction, seq);
  CREATE INDEX messages_dir_peer_seq ON messages (direction, peer, seq);
  CREATE INDEX messages_dir_state_seq ON messages (direction, state, seq);
  -- markDelivered/markRetry/markFailed/getMessage look a message up by id alone
  CREATE INDEX messages_id ON messages (id, direction);
  -- the outbox scan: only queued rows are indexed
  CREATE INDEX messages_due ON messages (next_attempt_at, seq) WHERE state = 'queued';
  -- host dispatch: only unhandled inbound rows are indexed
  CREATE INDEX messages_unhandled ON messages (seq) WHERE direction = 'in' AND handled_at IS NULL;

  -- Replay memory for inbound (peer, id), kept for the timestamp window even if messages rows are ever deleted.
  CREATE TABLE replay (
    peer TEXT NOT NULL,
    id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (peer, id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX replay_stored_at ON replay (stored_at);

  CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
  // 2: peer listing pages in index order (a sort of every peer per page was 19 ms at 10k peers), key mismatches
  `
  CREATE INDEX peers_order ON peers (first_seen, address);
  CREATE INDEX peers_trust_order ON peers (trust, first_seen, address);
  DROP INDEX peers_trust;
  -- status lists recent key mismatches: only peers that had one are indexed
  CREATE INDEX peers_key_mismatch ON peers (last_key_mismatch_at) WHERE last_key_mismatch_at IS NOT NULL;
  `,
  // 3: fewer pages written per inbound message (each one is WAL written and fsynced before the receipt):
  // outbox-by-state paging only ever asks for outbound rows, and the replay memory is filled when an inbound row is
  // deleted (by anything, a trigger cannot be bypassed), since a stored row already refuses its own replay.
  `
  DROP INDEX messages_dir_state_seq;
  CREATE INDEX messages_out_state_seq ON messages (state, seq) WHERE direction = 'out';
  CREATE TRIGGER messages_deleted_to_replay AFTER DELETE ON messages WHEN old.direction = 'in'
  BEGIN
    INSERT OR IGNORE INTO replay (peer, id, ts, stored_at) VALUES (old.peer, old.id, old.ts, old.created_at);
  END;
  `,
  // 4: one index fewer written per inbound message (8.5 -> 7 WAL pages for a one-message commit). Every lookup by id
  // alone is an outbound one (the outbox's marks); an inbound row is found by (peer, id), the unique key.
  `
  DROP INDEX messages_id;
  CREATE INDEX messages_out_id ON messages (id) WHERE direction = 'out';
  `,
  // 5: after a delivery the outbox makes that peer's messages waiting out a backoff due at once; only queued rows are
  // indexed (nothing on the inbound path writes here), so finding them reads that peer's waiting rows only, not every
  // queued row of every peer once per delivered message.
  `
  CREATE INDEX messages_due_peer ON messages (peer, next_attempt_at) WHERE state = 'queued';
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The oldest schema whose code can still use a database of schema SCHEMA_VERSION, written to `meta` (key
 * OLDEST_READER_META) by each migration run. An older declaw that knows this key opens a newer database as it is
 * (a plugin upgraded while a standalone `declaw` sharing its data directory is not yet) instead of refusing it, when
 * the key is at or below its own schema. Raise it with any migration older code cannot live with: a dropped index it
 * names in INDEXED BY, a column it would have to fill, a tighter CHECK, new meaning in old columns. Migrations that only
 * add an index or a trigger keep it. Schema 5 only added an index (schema 4's code predates the key and refuses anyway).
 */
export const OLDEST_READER_SCHEMA = 4;
export const OLDEST_READER_META = "oldest_reader_schema";
