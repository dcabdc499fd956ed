/**
 * HTML escaping for everything the P2P tab and the native page show. Peer aliases, message text, addresses, error
 * messages and hints can all come from another machine: every interpolated value goes through `escapeHtml`, in text
 * and in (double-quoted) attribute values alike. Pure and browser-safe (the native UI module imports it too).
 */

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/**
 * Text safe inside element content and inside quoted attribute values. Lone surrogates and C0/C1 controls other
 * than tab and newline are replaced with U+FFFD so a hostile string cannot smuggle in parser-confusing characters.
 */
export function escapeHtml(value: unknown): string {
  const s = value === null || value === undefined ? "" : String(value);
  return s
    .toWellFormed()
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd")
    .replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}
