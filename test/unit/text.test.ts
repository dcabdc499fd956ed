/**
 * escapeControls (src/core/text.ts): text another machine chose must reach a terminal or an agent with every control
 * character and bidi override shown as a visible escape, never raw and never silently dropped, while ordinary text
 * (newlines, tabs, any script, emoji) is left exactly as it is.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { escapeControls } from "../../src/core/text.ts";

describe("escapeControls", () => {
  it("shows ESC, CR and BEL as \\u escapes", () => {
    assert.equal(escapeControls("a\x1bb"), "a\\u001bb");
    assert.equal(escapeControls("line\r\x1b[2Kfrom alice"), "line\\u000d\\u001b[2Kfrom alice");
    assert.equal(escapeControls("ding\x07"), "ding\\u0007");
  });

  it("defuses an OSC 52 clipboard write", () => {
    const osc52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07";
    assert.equal(escapeControls(osc52), "\\u001b]52;c;ZWNobyBwd25lZA==\\u0007");
  });

  it("shows NUL, the other C0 controls, DEL and the C1 controls (U+0080-U+009F)", () => {
    assert.equal(escapeControls("\x00\x08\x0b\x0c\x1f"), "\\u0000\\u0008\\u000b\\u000c\\u001f");
    assert.equal(escapeControls("\x7f"), "\\u007f");
    assert.equal(escapeControls("\x80 \x85 \x9b31m \x9d"), "\\u0080 \\u0085 \\u009b31m \\u009d");
  });

  it("shows bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)", () => {
    assert.equal(escapeControls("invoice\u202efdp.exe"), "invoice\\u202efdp.exe");
    assert.equal(escapeControls("\u202a\u202b\u202c\u202d"), "\\u202a\\u202b\\u202c\\u202d");
    assert.equal(escapeControls("\u2066x\u2067y\u2068z\u2069"), "\\u2066x\\u2067y\\u2068z\\u2069");
  });

  it("leaves newlines, tabs, non-ASCII letters and emoji unchanged", () => {
    const plain = "hello\n\tworld — Grüße, привет, 你好, مرحبا 👋🏽👨‍👩‍👧 \u00a0\u00e9";
    assert.equal(escapeControls(plain), plain);
    assert.equal(escapeControls(""), "");
  });

  it("with oneLine, also shows newlines (a one-line field cannot start a line of its own)", () => {
    assert.equal(escapeControls("no\nfrom alice\tok", { oneLine: true }), "no\\u000afrom alice\tok");
    assert.equal(escapeControls("a\r\x1bb", { oneLine: true }), "a\\u000d\\u001bb");
  });
});
