/**
 * The helper threads' one lifecycle: a worker starts on the first post, a lost worker is reported once and replaced
 * on the next post, a stopped one is not reported as lost, and repeated failures give the slot up until a good answer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { WorkerSlot } from "../../src/core/worker-slot.ts";

const dir = mkdtempSync(join(tmpdir(), "declaw-slot-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Answers every message with `{ echo, thread }`; "die" makes it exit with code 1 instead. */
const ECHO = pathToFileURL(join(dir, "echo.mjs"));
writeFileSync(
  ECHO,
  `import { parentPort, threadId } from "node:worker_threads";
parentPort.on("message", (m) => (m === "die" ? process.exit(1) : parentPort.postMessage({ echo: m, thread: threadId })));
`,
);
const BROKEN = pathToFileURL(join(dir, "broken.mjs"));
writeFileSync(BROKEN, 'throw new Error("this worker never starts");\n');

function slotFor(url: URL, idleMs?: number) {
  const seen: { echo: unknown; thread: number }[] = [];
  let lost = 0;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const slot = new WorkerSlot<{ echo: unknown; thread: number }>({
    name: "declaw-test",
    url,
    workerData: null,
    limits: { maxOldGenerationSizeMb: 16 },
    idleMs,
    onMessage: (m) => {
      seen.push(m);
      wake();
    },
    onLost: () => {
      lost++;
      wake();
    },
  });
  const until = async (ok: () => boolean) => {
    const end = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > end) assert.fail("timed out");
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { slot, seen, lost: () => lost, until };
}

test("a worker starts on the first post and answers in order; stop() is not reported as a loss", async () => {
  const s = slotFor(ECHO);
  assert.equal(s.slot.post("a"), true);
  assert.equal(s.slot.post("b"), true);
  await s.until(() => s.seen.length === 2);
  assert.deepEqual(s.seen.map((m) => m.echo), ["a", "b"]);
  assert.equal(s.seen[0]!.thread, s.seen[1]!.thread, "one worker for both");
  await s.slot.stop();
  assert.equal(s.lost(), 0);
  // The next post starts a new worker.
  assert.equal(s.slot.post("c"), true);
  await s.until(() => s.seen.length === 3);
  assert.notEqual(s.seen[2]!.thread, s.seen[0]!.thread);
  await s.slot.stop();
});

test("a worker that dies is reported once and replaced on the next post", async () => {
  const s = slotFor(ECHO);
  s.slot.post("die");
  await s.until(() => s.lost() === 1);
  assert.equal(s.slot.givenUp, false);
  assert.equal(s.slot.post("after"), true);
  await s.until(() => s.seen.length === 1);
  assert.equal(s.seen[0]!.echo, "after");
  assert.equal(s.lost(), 1);
  await s.slot.stop();
});

test("three failures in a row give the slot up; a good answer in between starts the count again", async () => {
  const s = slotFor(ECHO);
  s.slot.failed();
  s.slot.failed();
  s.slot.succeeded();
  s.slot.failed();
  s.slot.failed();
  assert.equal(s.slot.givenUp, false, "two in a row since the last good answer");
  s.slot.post("die");
  await s.until(() => s.lost() === 1);
  assert.equal(s.slot.givenUp, true);
  assert.equal(s.slot.post("x"), false, "given up: the owner works inline");
});

test("a worker that cannot start is lost three times, then the slot gives up", async () => {
  const s = slotFor(BROKEN);
  for (let i = 1; i <= 3; i++) {
    assert.equal(s.slot.post(i), true, `try ${i} starts a worker`);
    await s.until(() => s.lost() === i);
  }
  assert.equal(s.slot.givenUp, true);
  assert.equal(s.slot.post(4), false);
  assert.equal(s.seen.length, 0);
});

test("an idle worker stops on its own, without being reported lost; work posted before then keeps it", async () => {
  const s = slotFor(ECHO, 200);
  s.slot.post("a");
  await s.until(() => s.seen.length === 1);
  s.slot.idle();
  await new Promise((r) => setTimeout(r, 100));
  s.slot.post("b"); // before the idle time ran out: the same worker, and the countdown is off
  await s.until(() => s.seen.length === 2);
  assert.equal(s.seen[1]!.thread, s.seen[0]!.thread);
  await new Promise((r) => setTimeout(r, 400));
  s.slot.post("c");
  await s.until(() => s.seen.length === 3);
  assert.equal(s.seen[2]!.thread, s.seen[0]!.thread, "no idle() since the last post: still the same worker");
  s.slot.idle();
  await new Promise((r) => setTimeout(r, 400));
  s.slot.post("d");
  await s.until(() => s.seen.length === 4);
  assert.notEqual(s.seen[3]!.thread, s.seen[0]!.thread, "stopped after idling, a new worker answers");
  assert.equal(s.lost(), 0);
  await s.slot.stop();
});
