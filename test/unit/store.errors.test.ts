/**
 * Store: what the user sees when the database cannot be used. Every failure is a coded P2PError naming the file;
 * an existing file is never reset, deleted or rewritten by a failed open.
 *
 * Tests run as root here, and root ignores permission bits: read-only and full filesystems are real tmpfs mounts,
 * permission cases run the probe as user "nobody". Both need root and skip with the reason otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { P2PError } from "../../src/core/errors.ts";
import { Store } from "../../src/core/store.ts";
import { APPLICATION_ID, MIGRATIONS, OLDEST_READER_SCHEMA, SCHEMA_VERSION } from "../../src/core/schema.ts";
import { completeLines, inbound, mountSkipReason, rootSkipReason, runHelper, tempDir, withTmpfs } from "../helpers/store-fixture.ts";

function caught(fn: () => unknown): P2PError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof P2PError, `expected a P2PError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected an error");
}

/** A closed, populated store in `dir`; returns the db path. */
function makeDb(dir: string, messages = 0): string {
  const s = Store.open(dir);
  s.upsertPeer({ address: "200::1", alias: "a" });
  for (let i = 0; i < messages; i += 100) {
    s.acceptInbound(Array.from({ length: 100 }, (_, k) => inbound(`m${i + k}`, { content: "x".repeat(300) })));
  }
  s.close();
  return join(dir, "peers.db");
}

test("a file that is not a database: P2P_ERR_DB_CORRUPT naming it, and it is left exactly as it was", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "peers.db");
  const garbage = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 256));
  writeFileSync(file, garbage);
  const err = caught(() => Store.open(dir));
  assert.equal(err.code, "P2P_ERR_DB_CORRUPT");
  assert.match(err.message, new RegExp(file.replaceAll("/", "\\/")));
  assert.match(err.hint ?? "", /backup/);
  assert.deepEqual(readFileSync(file), garbage);
  assert.deepEqual(readdirSync(dir), ["peers.db"], "no -wal/-shm or renamed copies left behind");
});

test("a database damaged inside: every use is P2P_ERR_DB_CORRUPT (never a reset); quickCheck reports it", (t) => {
  const dir = tempDir(t);
  const file = makeDb(dir, 2000);
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.alloc(4096 * 20, 0xee), 0, 4096 * 20, 4096 * 4);
  closeSync(fd);
  const damaged = readFileSync(file);
  const s = Store.open(dir); // the header is fine; the damage shows on use
  t.after(() => s.close());
  assert.equal(caught(() => s.listInbox({ limit: 5000 })).code, "P2P_ERR_DB_CORRUPT");
  assert.equal(caught(() => s.counts()).code, "P2P_ERR_DB_CORRUPT");
  let problems: string[] | undefined;
  try {
    problems = s.quickCheck();
  } catch (err) {
    assert.equal((err as P2PError).code, "P2P_ERR_DB_CORRUPT");
  }
  if (problems !== undefined) assert.ok(problems.length > 0);
  assert.deepEqual(readFileSync(file), damaged);
});

test("a database written by a newer declaw that our code cannot use is refused untouched (P2P_ERR_DB_UNAVAILABLE)", (t) => {
  const dir = tempDir(t);
  const file = makeDb(dir);
  const raw = new DatabaseSync(file);
  raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  raw.prepare("UPDATE meta SET value = ? WHERE key = 'oldest_reader_schema'").run(String(SCHEMA_VERSION + 1));
  raw.close();
  const before = readFileSync(file);
  const err = caught(() => Store.open(dir));
  assert.equal(err.code, "P2P_ERR_DB_UNAVAILABLE");
  assert.match(err.message, /newer declaw/);
  assert.ok(err.message.includes(file));
  assert.deepEqual(readFileSync(file), before);
});

test("a newer declaw's database that says our schema's code can still use it is opened as it is, never migrated back", (t) => {
  const dir = tempDir(t);
  const file = makeDb(dir);
  const raw = new DatabaseSync(file);
  // What a later declaw with an index-only migration 6 writes: user_version 6, readable by schema 4 code and later.
  raw.exec(`CREATE INDEX later_index ON messages (kind); PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  raw.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('oldest_reader_schema', ?)").run(String(SCHEMA_VERSION));
  raw.close();
  const s = Store.open(dir);
  s.acceptInbound([inbound("from-newer")]);
  assert.equal(s.listInbox().length, 1, "read and written");
  s.close();
  const after = new DatabaseSync(file);
  t.after(() => after.close());
  assert.equal(after.prepare("PRAGMA user_version").get()?.user_version, SCHEMA_VERSION + 1, "still the newer schema");
  assert.ok(after.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'later_index'").get(), "its index kept");

  // Once the newer declaw says our code can no longer use it, it is refused as any newer database.
  after.prepare("UPDATE meta SET value = ? WHERE key = 'oldest_reader_schema'").run(String(SCHEMA_VERSION + 1));
  assert.match(caught(() => Store.open(dir)).message, /newer declaw/);
});

test("a migration records which older schemas' code can still use the database", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "peers.db");
  const raw = new DatabaseSync(file);
  raw.exec(MIGRATIONS[0]!);
  raw.exec(`PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = 1`);
  raw.close();
  Store.open(dir).close();
  const after = new DatabaseSync(file);
  t.after(() => after.close());
  assert.equal(after.prepare("PRAGMA user_version").get()?.user_version, SCHEMA_VERSION);
  assert.equal(after.prepare("SELECT value FROM meta WHERE key = 'oldest_reader_schema'").get()?.value, String(OLDEST_READER_SCHEMA));
});

test("another program's SQLite file is refused untouched", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "peers.db");
  const raw = new DatabaseSync(file);
  raw.exec("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')");
  raw.close();
  const before = readFileSync(file);
  const err = caught(() => Store.open(dir));
  assert.equal(err.code, "P2P_ERR_DB_UNAVAILABLE");
  assert.match(err.message, /another program/);
  assert.deepEqual(readFileSync(file), before);
});

test("a new database is created with mode 0600 and tagged as declaw's", (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir);
  s.setMeta("k", "v");
  assert.deepEqual(readdirSync(dir).sort(), ["peers.db", "peers.db-shm", "peers.db-wal"]);
  for (const f of readdirSync(dir)) assert.equal((statSync(join(dir, f)).mode & 0o777).toString(8), "600", f);
  s.close();
  const raw = new DatabaseSync(join(dir, "peers.db"));
  assert.equal(raw.prepare("PRAGMA application_id").get()?.application_id, APPLICATION_ID);
  assert.equal(raw.prepare("PRAGMA user_version").get()?.user_version, SCHEMA_VERSION);
  assert.equal(raw.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
  raw.close();
});

test("an empty peers.db (a crash right after creating it) opens as a new database", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "peers.db"), "");
  const s = Store.open(dir);
  t.after(() => s.close());
  assert.equal(s.countPeers(), 0);
});

test("close() is idempotent; using a closed store is P2P_ERR_DB_UNAVAILABLE", (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir);
  s.close();
  s.close();
  assert.equal(caught(() => s.countPeers()).code, "P2P_ERR_DB_UNAVAILABLE");
  assert.equal(caught(() => s.acceptInbound([inbound("x")])).code, "P2P_ERR_DB_UNAVAILABLE");
});

test("a write lock held too long by another process: P2P_ERR_STORAGE after the timeout, nothing half-written", (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir, { busyTimeoutMs: 100 });
  t.after(() => s.close());
  s.acceptInbound([inbound("before")]);
  const other = new DatabaseSync(join(dir, "peers.db"));
  other.exec("BEGIN IMMEDIATE");
  const started = Date.now();
  const err = caught(() => s.acceptInbound([inbound("a"), inbound("b")]));
  assert.equal(err.code, "P2P_ERR_STORAGE");
  assert.ok(Date.now() - started >= 90);
  assert.match(err.message, /100 ms/);
  assert.deepEqual(s.listInbox().map((m) => m.id), ["before"], "reads still work during another's write (WAL)");
  other.exec("ROLLBACK");
  other.close();
  assert.deepEqual(s.acceptInbound([inbound("a")]), [{ duplicate: false, storedAt: 2000 }]);
});

test("a read-only filesystem: open is P2P_ERR_DB_UNAVAILABLE naming the file; a missing data dir P2P_ERR_DATA_DIR", { skip: mountSkipReason() }, async () => {
  await withTmpfs(2048, (mnt, remount) => {
    const dir = join(mnt, "data");
    const file = makeDb(dir, 100);
    const before = readFileSync(file);
    remount(true);
    const err = caught(() => Store.open(dir));
    assert.equal(err.code, "P2P_ERR_DB_UNAVAILABLE");
    assert.ok(err.message.includes(file), err.message);
    assert.equal(caught(() => Store.open(join(mnt, "other"))).code, "P2P_ERR_DATA_DIR");
    assert.deepEqual(readFileSync(file), before);
  });
});

test("a full disk: the batch is refused whole with P2P_ERR_STORAGE; after space is freed writing resumes", { skip: mountSkipReason() }, async () => {
  await withTmpfs(1024, (mnt) => {
    const dir = join(mnt, "data");
    const s = Store.open(dir);
    try {
      // A spare file to delete later; the database itself fills the rest.
      const spare = join(mnt, "spare");
      writeFileSync(spare, Buffer.alloc(128 * 1024, 1));
      let stored = 0;
      let failed: P2PError | undefined;
      let failedIds: string[] = [];
      for (let b = 0; b < 1000 && failed === undefined; b++) {
        const batch = Array.from({ length: 16 }, (_, k) => inbound(`f${b}-${k}`, { content: "z".repeat(2000) }));
        try {
          s.acceptInbound(batch);
          stored += batch.length;
        } catch (err) {
          failed = err as P2PError;
          failedIds = batch.map((m) => m.id);
        }
      }
      assert.ok(failed instanceof P2PError, "the disk filled up");
      assert.equal(failed.code, "P2P_ERR_STORAGE");
      assert.match(failed.message, /full/);
      const ids = new Set(s.listInbox({ limit: 1e6 }).map((m) => m.id));
      assert.equal(ids.size, stored, "every committed batch is there");
      for (const id of failedIds) assert.ok(!ids.has(id), `${id} from the refused batch must not be stored`);
      rmSync(spare);
      assert.deepEqual(s.acceptInbound([inbound(failedIds[0] as string)]).map((r) => r.duplicate), [false]);
      assert.deepEqual(s.quickCheck(), []);
    } finally {
      s.close();
    }
  });
});

test("permissions, as user nobody: an unreadable data dir or a read-only DB file give coded errors, never raw ones", { skip: rootSkipReason() }, async (t) => {
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const dir = join(base, "data");
  makeDb(dir); // owned by root, mode 0700
  const nobody = { uid: 65534, gid: 65534 };
  const probe = async (d = dir) => {
    const r = await runHelper(t, "store-probe.ts", [d], nobody);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(completeLines(r.stdout).at(-1) as string) as Record<string, string>;
  };
  assert.deepEqual(await probe(), { open: "P2P_ERR_DB_UNAVAILABLE" });
  const readOnlyDir = join(base, "ro");
  mkdirSync(readOnlyDir, { mode: 0o755 }); // root's, no peers.db yet: nobody cannot create it
  assert.deepEqual(await probe(readOnlyDir), { open: "P2P_ERR_DB_UNAVAILABLE" });

  for (const f of readdirSync(dir)) chownSync(join(dir, f), nobody.uid, nobody.gid);
  chownSync(dir, nobody.uid, nobody.gid);
  chmodSync(join(dir, "peers.db"), 0o400);
  // SQLite falls back to read-only: reading works, writing is refused with a code
  assert.deepEqual(await probe(), { open: "ok", read: "ok", write: "P2P_ERR_STORAGE" });
  assert.ok(existsSync(join(dir, "peers.db")));
});
