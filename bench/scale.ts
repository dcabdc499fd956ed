/**
 * Scale fixture for `npm run bench`: a data directory holding `peers` peers and `messages` inbound messages, written
 * straight into the store's schema with SQL (one transaction, no fsync), then timed page queries through the Node
 * facade, as the CLI and the plugin run them.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Store } from "../src/core/store.ts";
import { Node } from "../src/core/node.ts";

export function fillStore(dataDir: string, peers: number, messages: number): { ms: number; bytes: number } {
  const t = performance.now();
  Store.open(dataDir).close(); // schema, identity-independent
  const db = new DatabaseSync(join(dataDir, "peers.db"));
  db.exec("PRAGMA synchronous = OFF; PRAGMA journal_mode = WAL; BEGIN;");
  const now = Date.now();
  // Canonical 200::/7 text for 200:0:0:0:0:0:x:y is "200::x:y" (x != 0), lowercase hex without leading zeros.
  db.exec(`
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${peers})
    INSERT INTO peers (address, alias, public_key, key_binding, trust, port, protocol, first_seen, last_seen)
    SELECT printf('200::%x:%x', 1 + x / 65536, x % 65536), 'peer' || x, NULL, NULL,
           CASE WHEN x % 10 = 0 THEN 'pending' ELSE 'trusted' END, 8099, 2, ${now} - x, ${now}
    FROM c;`);
  db.exec(`
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${messages})
    INSERT INTO messages (id, peer, direction, kind, content, ts, created_at, state, protocol, handled_at)
    SELECT printf('%08x-0000-7000-8000-%012x', x / 1000, x), printf('200::%x:%x', 1 + (x % ${peers} + 1) / 65536, (x % ${peers} + 1) % 65536),
           'in', 'chat', 'message number ' || x || ' with some ordinary text of about the size a chat line has', ${now} - ${messages} + x,
           ${now} - ${messages} + x, 'received', 2, ${now}
    FROM c;`);
  db.exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);");
  const bytes = Number(db.prepare("SELECT page_count * page_size AS b FROM pragma_page_count(), pragma_page_size()").get()?.b ?? 0);
  db.close();
  return { ms: performance.now() - t, bytes };
}

function timeIt(fn: () => unknown, reps: number): { medianMs: number; maxMs: number } {
  fn(); // warm the statement and the page cache once
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    xs.push(performance.now() - t);
  }
  xs.sort((a, b) => a - b);
  return { medianMs: xs[Math.floor(xs.length / 2)]!, maxMs: xs[xs.length - 1]! };
}

/** Times the page queries hosts make (50 rows a page) on a filled data dir. */
export function timeQueries(dataDir: string, peers: number, reps = 20): Record<string, { medianMs: number; maxMs: number }> {
  const node = Node.open({ dataDir, config: { yggdrasil: "off" } });
  try {
    const first = node.inbox({ limit: 50 });
    const deepSeq = first.length ? Math.max(1, Math.floor(first[0]!.seq / 2)) : 0;
    const somePeer = `200::1:${(peers >> 1).toString(16)}`;
    return {
      "peers page 1": timeIt(() => node.peers({ limit: 50 }), reps),
      "peers last page": timeIt(() => node.peers({ limit: 50, offset: peers - 50 }), reps),
      "inbox page 1": timeIt(() => node.inbox({ limit: 50 }), reps),
      "inbox page (beforeSeq, deep)": timeIt(() => node.inbox({ limit: 50, beforeSeq: deepSeq }), reps),
      "inbox of one peer": timeIt(() => node.inbox({ peer: somePeer, limit: 50 }), reps),
      "counts (status)": timeIt(() => node.store.counts(), Math.min(reps, 5)),
    };
  } finally {
    node.close();
  }
}
