/**
 * Rules for text: what a user may name a peer, what counts as an empty message, and text from another machine (message content, a peer's refusal message) made safe to show on a terminal or hand to
 * an agent. The wire accepts any Unicode in content, so a peer can send ESC/CR sequences that rewrite the owner's
 * screen (`\r\x1b[2K` then a fake "from <trusted peer>" line) or reach the terminal itself (OSC 52 writes the
 * clipboard), and bidi overrides that make text read differently from what it is. Only display changes: stored
 * content stays byte-exact.
 */

// C0 controls except tab (U+0009) and newline (U+000A), so CR (U+000D) is escaped too; DEL and the C1 controls
// (U+007F-U+009F, U+009B is a one-byte CSI on some terminals); the bidi embeddings/overrides (U+202A-U+202E) and
// isolates (U+2066-U+2069) of Unicode TR9.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// The same plus newline, for one-line fields (a refusal reason, a last error): a newline there could start a line
// that looks like our own output.
const UNSAFE_IN_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Replaces each control character and bidi override/isolate with a visible escape (ESC becomes the six characters
 * `\u001b`), so nothing is silently hidden or dropped. Tabs and all other text (non-ASCII letters, emoji) are
 * unchanged; so are newlines unless `oneLine` is set.
 */
export function escapeControls(text: string, { oneLine = false }: { oneLine?: boolean } = {}): string {
  return text.replace(oneLine ? UNSAFE_IN_LINE : UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** An alias: an ASCII letter, then up to 31 ASCII letters, digits, `_`, `.` or `-` (looked up case-insensitively). */
export const ALIAS_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;
export const ALIAS_RULE = "1 to 32 of A-Z a-z 0-9 _ . -, starting with a letter";

// White space (what String#trim removes, NBSP and BOM among it) and Unicode's default-ignorable code points (zero
// width space and joiners, word joiner, soft hyphen, variation selectors): text made only of these shows as nothing.
const BLANK = /^[\s\p{Default_Ignorable_Code_Point}]*$/u;

/** True when the text would show as nothing: empty, or only white space and invisible characters. */
export function isBlank(text: string): boolean {
  return BLANK.test(text);
}
