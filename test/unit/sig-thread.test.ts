/**
 * The signature thread gives exactly the answers inline verification and signing give, whatever happens to its
 * worker: batched or not, past its queue bound, closed with jobs in the worker, or never closed at all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { encodeBase64 } from "../../src/core/encoding.ts";
import { generateKeyPair, signBytes } from "../../src/core/keys.ts";
import { MAX_IN_WORKER, MAX_WAITING, packJobs, runSigJob, SignatureThread, unpackJobs, type SigJob, type SigResult } from "../../src/core/sig-thread.ts";

const self = generateKeyPair();
const sender = generateKeyPair();

/** Jobs alternating valid and forged signatures, each with receipt bytes to sign. */
function jobs(n: number): SigJob[] {
  return Array.from({ length: n }, (_, i) => {
    const data = Buffer.from(`message ${i}`);
    const sig = signBytes(sender, data);
    if (i % 2 === 1) sig[0]! ^= 1;
    return { key: sender.publicKey, data, sig, receipt: Buffer.from(`receipt ${i}`) };
  });
}

/** What inline work answers for jobs(n)[i]. */
function expected(job: SigJob, i: number) {
  return i % 2 === 0 ? { valid: true, receiptSig: encodeBase64(signBytes(self, job.receipt!)) } : { valid: false };
}
const plain = (r: SigResult | "busy") => (r === "busy" ? r : { ...r });
const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : undefined);

test("a batch crosses to the worker as one buffer that gives back the same jobs, with or without receipt bytes", () => {
  const js: SigJob[] = [...jobs(3), { key: new Uint8Array(0), sig: new Uint8Array(0), data: new Uint8Array(0) }, { ...jobs(1)[0]!, receipt: new Uint8Array(0) }];
  const back = unpackJobs(packJobs(js));
  assert.equal(back.length, js.length);
  back.forEach((j, i) => {
    assert.deepEqual([hex(j.key), hex(j.sig), hex(j.data), hex(j.receipt)], [hex(js[i]!.key), hex(js[i]!.sig), hex(js[i]!.data), hex(js[i]!.receipt)], `job ${i}`);
  });
  assert.equal(unpackJobs(packJobs([])).length, 0);
});

test("answers match inline work: valid signatures get our receipt signature, forged ones none", async () => {
  const t = new SignatureThread(self);
  try {
    const js = jobs(40); // all in one turn: one batch
    const results = await Promise.all(js.map((j) => t.run(j)));
    results.forEach((r, i) => assert.deepEqual(plain(r), expected(js[i]!, i), `job ${i}`));
    assert.equal(t.pending, 0);
    assert.equal(t.answeredByWorker, 40, "the worker, not the test's thread, did the work");
    // A later batch reuses the same worker and answers just as well.
    const again = await t.run(js[0]!);
    assert.deepEqual(plain(again), expected(js[0]!, 0));
    assert.equal(t.answeredByWorker, 41);
  } finally {
    t.close();
  }
});

test("a job without receipt bytes is only verified", async () => {
  const t = new SignatureThread(self);
  try {
    const [j] = jobs(1);
    assert.deepEqual(await t.run({ ...j!, receipt: undefined }), { valid: true });
    assert.deepEqual(runSigJob(self, { ...j!, receipt: undefined }), { valid: true });
  } finally {
    t.close();
  }
});

test("unproved senders' jobs past the waiting bound are answered busy, unchecked; the rest are answered right", async () => {
  const t = new SignatureThread(self);
  try {
    const js = jobs(MAX_WAITING + 40); // all in one turn
    const results = await Promise.all(js.map((j) => t.run(j)));
    const busy = results.filter((r) => r === "busy").length;
    assert.equal(busy, 40);
    results.forEach((r, i) => assert.deepEqual(plain(r), i < MAX_WAITING ? expected(js[i]!, i) : "busy", `job ${i}`));
    assert.equal(t.answeredByWorker, MAX_WAITING, "all checked ones in the worker, none on this thread");
    // A proved sender's job is never answered busy.
    const more = jobs(MAX_WAITING + 1);
    const known = more.map((j) => t.run(j, true));
    (await Promise.all(known)).forEach((r, i) => assert.deepEqual(plain(r), expected(more[i]!, i), `known job ${i}`));
  } finally {
    t.close();
  }
});

test("a proved sender's job goes ahead of the unproved ones already waiting", async () => {
  const t = new SignatureThread(self);
  try {
    const order: string[] = [];
    const js = jobs(4 * MAX_IN_WORKER);
    const unproved = js.map((j, i) => t.run(j).then(() => order.push(`unproved ${i}`)));
    const proved = t.run(jobs(1)[0]!, true).then((r) => {
      order.push("proved");
      return r;
    });
    assert.deepEqual(plain(await proved), expected(jobs(1)[0]!, 0));
    await Promise.all(unproved);
    assert.equal(order[0], "proved", `answered first, before ${order.length - 1} unproved jobs queued ahead of it`);
  } finally {
    t.close();
  }
});

test("knownPending counts proved senders' jobs until each is answered, waiting or in the worker; unproved ones never", async () => {
  const t = new SignatureThread(self);
  try {
    const seen: number[] = [];
    const unproved = jobs(10).map((j) => t.run(j));
    const proved = jobs(40).map((j) => t.run(j, true).then(() => seen.push(t.knownPending)));
    assert.equal(t.knownPending, 40);
    await new Promise((r) => setImmediate(r));
    assert.equal(t.knownPending, 40, "in the worker (MAX_IN_WORKER of them) or still waiting");
    await Promise.all([...proved, ...unproved]);
    // Answers come in groups: when the i-th proved job's answer is seen, at most 39 - i known jobs are left.
    seen.forEach((n, i) => assert.ok(n <= 39 - i && (i === 0 || n <= seen[i - 1]!), `after answer ${i}: ${n} left`));
    assert.equal(seen.at(-1), 0);
    assert.equal(t.knownPending, 0);
  } finally {
    t.close();
  }
});

test("closed while the worker holds jobs: every job is still answered, and later ones inline", async () => {
  const t = new SignatureThread(self);
  const js = jobs(30);
  const pending = js.map((j) => t.run(j));
  await new Promise((r) => setImmediate(r)); // the batch is posted to the worker
  t.close();
  const results = await Promise.all(pending);
  results.forEach((r, i) => assert.deepEqual(plain(r), expected(js[i]!, i), `job ${i}`));
  assert.equal(t.pending, 0);
  assert.deepEqual(plain(await t.run(js[0]!)), expected(js[0]!, 0), "after close: inline");
});

test("a worker that dies halfway through a batch: the jobs it did not answer are done inline", async () => {
  const dir = mkdtempSync(join(tmpdir(), "declaw-sig-"));
  const dying = join(dir, "dying-worker.mjs");
  const src = (f: string) => JSON.stringify(new URL(`../../src/core/${f}`, import.meta.url).href);
  // The real worker's job, for the first job of its first batch only; then it exits.
  writeFileSync(
    dying,
    `import { parentPort, workerData } from "node:worker_threads";
import { keyPairFromSeed } from ${src("keys.ts")};
import { runSigJob, unpackJobs } from ${src("sig-thread.ts")};
const self = keyPairFromSeed(new Uint8Array(workerData.seed));
parentPort.on("message", (packed) => { parentPort.postMessage([runSigJob(self, unpackJobs(packed)[0])]); process.exit(1); });
`,
  );
  const t = new SignatureThread(self, { workerUrl: pathToFileURL(dying) });
  try {
    const js = jobs(10);
    const results = await Promise.all(js.map((j) => t.run(j)));
    results.forEach((r, i) => assert.deepEqual(plain(r), expected(js[i]!, i), `job ${i}`));
    assert.equal(t.answeredByWorker, 1);
    assert.equal(t.pending, 0);
  } finally {
    t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a worker that cannot start costs nothing but inline work, and is given up after a few tries", async () => {
  const dir = mkdtempSync(join(tmpdir(), "declaw-sig-"));
  const broken = join(dir, "broken-worker.mjs");
  writeFileSync(broken, 'throw new Error("this worker never starts");\n');
  const t = new SignatureThread(self, { workerUrl: pathToFileURL(broken) });
  try {
    for (let round = 0; round < 5 && !t.inlineOnly; round++) {
      const js = jobs(6);
      const results = await Promise.all(js.map((j) => t.run(j)));
      results.forEach((r, i) => assert.deepEqual(plain(r), expected(js[i]!, i), `round ${round}, job ${i}`));
    }
    assert.equal(t.inlineOnly, true, "given up after repeated failures");
    assert.equal(t.answeredByWorker, 0);
    assert.deepEqual(plain(await t.run(jobs(1)[0]!)), expected(jobs(1)[0]!, 0));
  } finally {
    t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a process that never closes it still exits (the worker does not hold the event loop)", () => {
  const script = `
    import { generateKeyPair, signBytes } from ${JSON.stringify(new URL("../../src/core/keys.ts", import.meta.url).href)};
    import { SignatureThread } from ${JSON.stringify(new URL("../../src/core/sig-thread.ts", import.meta.url).href)};
    const k = generateKeyPair();
    const data = Buffer.from("x");
    const r = await new SignatureThread(k).run({ key: k.publicKey, data, sig: signBytes(k, data) });
    console.log(JSON.stringify(r));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { valid: true });
});
