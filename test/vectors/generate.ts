/**
 * Regenerates the checked-in test vectors (test/vectors/*.json) and the "Test vectors" section of docs/protocol.md.
 * Run by hand only when the protocol changes on purpose:
 *
 *   node_modules/.bin/node test/vectors/generate.ts
 *
 * The signed bytes are assembled here field by field straight from the spec (docs/protocol.md section 7) and
 * compared with what src/core/wire*.ts produce; the script refuses to write anything if they differ.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { keyPairFromSeed, signBytes } from "../../src/core/keys.ts";
import {
  buildEnvelope,
  buildPingProof,
  buildReceipt,
  envelopeSigningBytes,
  pingProofSigningBytes,
  receiptSigningBytes,
} from "../../src/core/wire.ts";
import { buildV1Message, v1MessageId, v1SigningBytes } from "../../src/core/wire-v1.ts";

const root = join(import.meta.dirname, "..", "..");
const hex = (b: Uint8Array | Buffer): string => Buffer.from(b).toString("hex");
const ascii = (s: string): string => Buffer.from(s, "utf8").toString("hex");
const u8 = (n: number): string => n.toString(16).padStart(2, "0");
const u32 = (n: number): string => n.toString(16).padStart(8, "0");
const u64 = (n: number): string => n.toString(16).padStart(16, "0");
const b64hex = (s: string): string => Buffer.from(s, "base64").toString("hex");
const addrHex = (bytes: Uint8Array): string => hex(bytes);

function party(fill: number) {
  const seed = new Uint8Array(32).fill(fill);
  const kp = keyPairFromSeed(seed);
  const addressBytes = deriveAddress(kp.publicKey);
  return {
    signer: { ...kp, address: formatIPv6(addressBytes) },
    addressBytes,
    json: {
      seedHex: hex(seed),
      publicKeyHex: hex(kp.publicKey),
      publicKeyBase64: Buffer.from(kp.publicKey).toString("base64"),
      address: formatIPv6(addressBytes),
    },
  };
}

type Field = { field: string; hex: string };
const joinFields = (fs: Field[]): string => fs.map((f) => f.hex).join("");

function same(name: string, spec: string, impl: Uint8Array): void {
  if (spec !== hex(impl)) throw new Error(`${name}: implementation bytes differ from the spec assembly\n${spec}\n${hex(impl)}`);
}

const A = party(0x01); // sender
const B = party(0x02); // recipient
const TS = 1795682838549; // 2026-11-26T08:47:18.549Z in ms, the timestamp of the v1 facts document
const ID = "01a21709-a815-7d3c-9a1b-4f2e6d8c0b5a"; // UUIDv7: 48-bit TS, version 7, variant 10
const CONTENT = "héllo ✓";
const STORED = TS + 12;
const NONCE_BYTES = Uint8Array.from({ length: 16 }, (_, i) => i);
const NONCE = Buffer.from(NONCE_BYTES).toString("base64url");
const PONG_TS = TS + 30000;

// --- envelope ---
const env = buildEnvelope(A.signer, B.signer.address, "chat", CONTENT, { id: ID, ts: TS });
const contentUtf8 = Buffer.from(CONTENT, "utf8");
const envFields: Field[] = [
  { field: 'domain "declaw/v2/envelope" + 0x00', hex: ascii("declaw/v2/envelope") + "00" },
  { field: "v (u8)", hex: u8(2) },
  { field: "id (16 bytes)", hex: ID.replaceAll("-", "") },
  { field: "from (16 bytes)", hex: addrHex(A.addressBytes) },
  { field: "to (16 bytes)", hex: addrHex(B.addressBytes) },
  { field: "key (32 bytes)", hex: b64hex(env.key) },
  { field: "ts (u64 BE)", hex: u64(TS) },
  { field: "kind length (u8) + ASCII", hex: u8(4) + ascii("chat") },
  { field: "content length (u32 BE) + UTF-8", hex: u32(contentUtf8.length) + hex(contentUtf8) },
];
same("envelope", joinFields(envFields), envelopeSigningBytes(env));
// The same envelope fields signed under the receipt domain: a valid signature by A, of the wrong statement.
const crossDomainBytes = Buffer.from(ascii("declaw/v2/receipt") + "00" + joinFields(envFields.slice(1)), "hex");
const crossDomainSig = Buffer.from(signBytes(A.signer, crossDomainBytes)).toString("base64");

const envelopeVector = {
  description: "declaw v2 envelope signed by party A (seed 0x01 x 32) to party B (seed 0x02 x 32)",
  sender: A.json,
  recipient: B.json,
  envelope: env,
  signedFields: envFields,
  signedBytesHex: hex(envelopeSigningBytes(env)),
  signatureBase64: env.sig,
  crossDomain: {
    description:
      "the same fields signed by A under the receipt domain prefix instead of the envelope one: parses, must not verify",
    signedBytesHex: hex(crossDomainBytes),
    envelope: { ...env, sig: crossDomainSig },
  },
};

// --- receipt ---
const rec = buildReceipt(B.signer, { id: ID, from: A.signer.address }, STORED);
const recFields: Field[] = [
  { field: 'domain "declaw/v2/receipt" + 0x00', hex: ascii("declaw/v2/receipt") + "00" },
  { field: "v (u8)", hex: u8(2) },
  { field: "id (16 bytes)", hex: ID.replaceAll("-", "") },
  { field: "from = original sender (16 bytes)", hex: addrHex(A.addressBytes) },
  { field: "to = recipient (16 bytes)", hex: addrHex(B.addressBytes) },
  { field: "key = recipient key (32 bytes)", hex: b64hex(rec.key) },
  { field: "stored (u64 BE)", hex: u64(STORED) },
];
same("receipt", joinFields(recFields), receiptSigningBytes(rec));
const receiptVector = {
  description: "receipt by B for the envelope vector, stored 12 ms after its ts",
  signer: B.json,
  receipt: rec,
  signedFields: recFields,
  signedBytesHex: hex(receiptSigningBytes(rec)),
  signatureBase64: rec.sig,
};

// --- ping proof ---
const pong = buildPingProof(B.signer, NONCE, PONG_TS);
const pongFields: Field[] = [
  { field: 'domain "declaw/v2/pong" + 0x00', hex: ascii("declaw/v2/pong") + "00" },
  { field: "v (u8)", hex: u8(2) },
  { field: "address (16 bytes)", hex: addrHex(B.addressBytes) },
  { field: "key (32 bytes)", hex: b64hex(pong.key) },
  { field: "versions count (u8) + u8 each", hex: u8(2) + u8(1) + u8(2) },
  { field: "ts (u64 BE)", hex: u64(PONG_TS) },
  { field: "nonce length (u8) + raw bytes", hex: u8(16) + hex(NONCE_BYTES) },
];
same("pong", joinFields(pongFields), pingProofSigningBytes(pong));
const pongVector = {
  description: "ping proof by B answering GET /v2/ping?nonce=" + NONCE,
  signer: B.json,
  nonce: NONCE,
  pong,
  signedFields: pongFields,
  signedBytesHex: hex(pingProofSigningBytes(pong)),
  signatureBase64: pong.sig,
};

// --- v1 ---
const v1 = buildV1Message(A.signer, CONTENT, TS);
const v1Text =
  `{"content":${JSON.stringify(CONTENT)},"event":"chat","fromYgg":"${A.signer.address}",` +
  `"publicKey":"${A.json.publicKeyBase64}","timestamp":${TS}}`;
same("v1", ascii(v1Text), v1SigningBytes(v1));
const v1Vector = {
  description: "legacy v1 message from A (POST /peer/message), as declaw 0.1.2-0.2.3 sends and verifies it",
  sender: A.json,
  message: v1,
  signedText: v1Text,
  signedBytesHex: hex(v1SigningBytes(v1)),
  signatureBase64: v1.signature,
  messageId: v1MessageId(v1),
  messageIdInputHex: ascii("declaw/v1/replay") + "00" + A.json.publicKeyHex + b64hex(v1.signature),
};

const write = (name: string, v: unknown): void =>
  writeFileSync(join(root, "test", "vectors", name), JSON.stringify(v, null, 2) + "\n");
write("envelope.json", envelopeVector);
write("receipt.json", receiptVector);
write("pong.json", pongVector);
write("v1-message.json", v1Vector);

// --- docs/protocol.md, between the markers ---
const fieldTable = (fs: Field[]): string =>
  ["| field | hex |", "|---|---|", ...fs.map((f) => `| ${f.field} | \`${f.hex}\` |`)].join("\n");
const block = (lang: string, body: string): string => "```" + lang + "\n" + body + "\n```";
const wrapHex = (h: string): string => h.match(/.{1,64}/g)!.join("\n");

const md = [
  "Keys: party A has the Ed25519 seed `01` x 32, party B the seed `02` x 32.",
  "",
  `- A: public key \`${A.json.publicKeyBase64}\` (hex \`${A.json.publicKeyHex}\`), address \`${A.json.address}\``,
  `- B: public key \`${B.json.publicKeyBase64}\` (hex \`${B.json.publicKeyHex}\`), address \`${B.json.address}\``,
  "",
  "### Envelope (A to B)",
  "",
  block("json", JSON.stringify(env, null, 2)),
  "",
  fieldTable(envFields),
  "",
  "Signed bytes:",
  "",
  block("", wrapHex(envelopeVector.signedBytesHex)),
  "",
  `Signature: \`${env.sig}\``,
  "",
  "Cross-domain check: the same fields after the prefix `declaw/v2/receipt` 0x00 instead, signed by A, give",
  `\`${crossDomainSig}\`; an envelope carrying that \`sig\` is well-formed but MUST NOT verify.`,
  "",
  "### Receipt (B for the envelope above)",
  "",
  block("json", JSON.stringify(rec, null, 2)),
  "",
  fieldTable(recFields),
  "",
  "Signed bytes:",
  "",
  block("", wrapHex(receiptVector.signedBytesHex)),
  "",
  `Signature: \`${rec.sig}\``,
  "",
  `### Ping proof (B answering \`GET /v2/ping?nonce=${NONCE}\`)`,
  "",
  block("json", JSON.stringify(pong, null, 2)),
  "",
  fieldTable(pongFields),
  "",
  "Signed bytes:",
  "",
  block("", wrapHex(pongVector.signedBytesHex)),
  "",
  `Signature: \`${pong.sig}\``,
  "",
  "### Legacy v1 message (A, `POST /peer/message`)",
  "",
  block("json", JSON.stringify(v1, null, 2)),
  "",
  "Signed text (its UTF-8 bytes are signed):",
  "",
  block("", v1Text),
  "",
  "Signed bytes:",
  "",
  block("", wrapHex(v1Vector.signedBytesHex)),
  "",
  `Signature: \`${v1.signature}\``,
  "",
  `Dedupe id (\`v1MessageId\`): \`${v1Vector.messageId}\`, from sha256 of`,
  "",
  block("", wrapHex(v1Vector.messageIdInputHex)),
].join("\n");

const docPath = join(root, "docs", "protocol.md");
const BEGIN = "<!-- vectors:begin (generated by test/vectors/generate.ts; do not edit by hand) -->";
const END = "<!-- vectors:end -->";
const doc = readFileSync(docPath, "utf8");
const i = doc.indexOf(BEGIN);
const j = doc.indexOf(END);
if (i === -1 || j === -1 || j < i) throw new Error(`docs/protocol.md lacks the vector markers`);
writeFileSync(docPath, doc.slice(0, i + BEGIN.length) + "\n\n" + md + "\n\n" + doc.slice(j));
console.log("wrote test/vectors/{envelope,receipt,pong,v1-message}.json and the vectors section of docs/protocol.md");
