/**
 * Who reaches the agent, and how often. Two agents that answer each other would talk forever, so the turns one peer's
 * messages start are capped per window (the loop budget: each turn that ran takes one, however the agent answered,
 * and so does each message our send tool sends back to that peer from its session); peers decide nothing here.
 *
 * Dispatch rules:
 * - trusted peer: dispatched, unless its loop budget is spent (then the message stays in the inbox, is marked
 *   handled, and counted as "held back" in `p2p status`).
 * - blocked peer: never dispatched (marked handled; the message stays in the inbox).
 * - pending peer (an unknown sender; the core records it on first contact):
 *   - allowlist (default), pairing: held: the message stays unhandled, so `openclaw p2p allow <peer>` later hands
 *     the held messages to the agent in order. pairing additionally sends the peer one notice that its request
 *     waits for the operator.
 *   - open: dispatched like a trusted peer.
 *
 * The budget state lives in the store's meta table (key below) so that `openclaw p2p status`, run in another
 * process, sees it.
 */
import type { DmPolicy } from "./config.ts";

export type Decision = "dispatch" | "hold" | "drop-blocked" | "drop-budget";

export function decide(trust: "trusted" | "pending" | "blocked" | undefined, policy: DmPolicy, budgetLeft: number): Decision {
  if (trust === "blocked") return "drop-blocked";
  if (trust === "trusted" || (policy === "open" && trust === "pending")) return budgetLeft > 0 ? "dispatch" : "drop-budget";
  return "hold";
}

export const BUDGET_META_KEY = "openclaw.loop_budget";
export const PAIRING_META_KEY = "openclaw.pairing_notified";

interface MetaStore {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
}

export interface PeerBudget {
  /** Times (ms) of the turns (and tool sends) charged inside the current window (the field name predates turns). */
  replies: number[];
  /** Inbound messages not given to the agent because the budget was spent. */
  heldBack: number;
  lastHeldBackAt: number | null;
}

export interface BudgetView {
  peer: string;
  used: number;
  limit: number;
  exhausted: boolean;
  /** When the oldest counted reply leaves the window (ms), if the budget is spent. */
  resetsAt: number | null;
  heldBack: number;
  lastHeldBackAt: number | null;
}

type BudgetState = Record<string, PeerBudget>;

const MAX_TRACKED_PEERS = 10_000;

function read(store: MetaStore): BudgetState {
  try {
    const v = JSON.parse(store.getMeta(BUDGET_META_KEY) ?? "{}") as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as BudgetState) : {};
  } catch {
    return {};
  }
}

function write(store: MetaStore, state: BudgetState): void {
  const keys = Object.keys(state);
  if (keys.length > MAX_TRACKED_PEERS) {
    // Forget the quietest peers first; a forgotten peer just starts with a full budget.
    keys.sort((a, b) => (state[a]!.replies.at(-1) ?? 0) - (state[b]!.replies.at(-1) ?? 0));
    for (const k of keys.slice(0, keys.length - MAX_TRACKED_PEERS)) delete state[k];
  }
  store.setMeta(BUDGET_META_KEY, JSON.stringify(state));
}

function entry(state: BudgetState, peer: string, now: number, windowMs: number): PeerBudget {
  const e = state[peer] ?? { replies: [], heldBack: 0, lastHeldBackAt: null };
  e.replies = e.replies.filter((t) => t > now - windowMs);
  state[peer] = e;
  return e;
}

export class LoopBudget {
  readonly #store: MetaStore;
  readonly limit: number;
  readonly windowMs: number;

  constructor(store: MetaStore, limit: number, windowMs: number) {
    this.#store = store;
    this.limit = limit;
    this.windowMs = windowMs;
  }

  left(peer: string, now = Date.now()): number {
    const e = entry(read(this.#store), peer, now, this.windowMs);
    return Math.max(0, this.limit - e.replies.length);
  }

  /** Takes one from the budget; false (nothing recorded) when it is spent. */
  take(peer: string, now = Date.now()): boolean {
    const state = read(this.#store);
    const e = entry(state, peer, now, this.windowMs);
    if (e.replies.length >= this.limit) return false;
    e.replies.push(now);
    write(this.#store, state);
    return true;
  }

  recordHeldBack(peer: string, now = Date.now()): void {
    const state = read(this.#store);
    const e = entry(state, peer, now, this.windowMs);
    e.heldBack++;
    e.lastHeldBackAt = now;
    write(this.#store, state);
  }

  view(peer: string, now = Date.now()): BudgetView {
    return toView(peer, entry(read(this.#store), peer, now, this.windowMs), this.limit, this.windowMs);
  }

  /** Peers that used part of their budget in this window or had messages held back. */
  all(now = Date.now()): BudgetView[] {
    const state = read(this.#store);
    return Object.keys(state)
      .map((p) => toView(p, entry(state, p, now, this.windowMs), this.limit, this.windowMs))
      .filter((v) => v.used > 0 || v.heldBack > 0);
  }
}

function toView(peer: string, e: PeerBudget, limit: number, windowMs: number): BudgetView {
  const exhausted = e.replies.length >= limit;
  const oldest = e.replies[0];
  return {
    peer,
    used: e.replies.length,
    limit,
    exhausted,
    resetsAt: exhausted && oldest !== undefined ? oldest + windowMs : null,
    heldBack: e.heldBack,
    lastHeldBackAt: e.lastHeldBackAt,
  };
}

/** Whether the pairing notice was already sent to this peer (then records that it is being sent now). */
export function firstPairingNotice(store: MetaStore, peer: string, now = Date.now()): boolean {
  let seen: Record<string, number> = {};
  try {
    seen = JSON.parse(store.getMeta(PAIRING_META_KEY) ?? "{}") as Record<string, number>;
  } catch { /* a damaged value is replaced below */ }
  if (seen[peer] !== undefined) return false;
  seen[peer] = now;
  const keys = Object.keys(seen);
  if (keys.length > MAX_TRACKED_PEERS) for (const k of keys.slice(0, keys.length - MAX_TRACKED_PEERS)) delete seen[k];
  store.setMeta(PAIRING_META_KEY, JSON.stringify(seen));
  return true;
}
