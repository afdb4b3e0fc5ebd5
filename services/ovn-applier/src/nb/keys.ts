/**
 * Tunnel keys: the GRE key / ERSPAN session id OVN writes from `Mirror.index`.
 *
 * OVS refuses a second tunnel port towards the same remote IP with the same key
 * (`Interface.error` "could not add network device … (File exists)") while NB accepts the
 * row, so a key must be unique per sink across every NB Mirror row — ovntap's or not, any
 * type, and each row of an emulated `both`. Sinks are compared in canonical form
 * (contracts `canonicalIp`): `ovn-nbctl mirror-add` stores the address as typed, so
 * `2001:DB8::1` and `2001:db8::1` are one sink.
 *
 *   lowestFree(new Set([0, 1, 3]), keySpace("gre"))    // 2
 */
import { canonicalIp, ERSPAN_SESSION_MAX, GRE_KEY_MAX } from "@ovntap/contracts";

export interface KeySpace {
  readonly min: number;
  readonly max: number;
}

/**
 * ERSPAN: OVN writes the index as both `key` and `erspan_idx` (controller/mirror.c), and the
 * session id is 10 bits. GRE: the key field is 32 bits (RFC 2890 §2.1).
 */
export function keySpace(type: string): KeySpace {
  return type === "erspan" ? { min: 0, max: ERSPAN_SESSION_MAX } : { min: 0, max: GRE_KEY_MAX };
}

/**
 * Allocated keys start at 1. Key 0 is legal and is honoured when asked for, but a GRE key of
 * 0 reads as "no key" to receivers configured without one (a gretap without `key`), and
 * session 0 is the default session on many switches; an allocated mirror should never be
 * mistaken for either.
 */
export const FIRST_ALLOCATED_KEY = 1;

/** The smallest key in `space` not in `used`, or undefined when every one is taken. */
export function lowestFree(used: ReadonlySet<number>, space: KeySpace): number | undefined {
  const taken = [...used].filter((k) => k >= space.min && k <= space.max).sort((a, b) => a - b);
  let candidate = space.min;
  for (const k of taken) {
    if (k > candidate) break;
    if (k === candidate) candidate++;
  }
  return candidate <= space.max ? candidate : undefined;
}

/** Sinks seen so far → canonical form; a few distinct sinks, looked up for every row of every plan. */
const canonicalSinks = new Map<string, string | undefined>();
const CANONICAL_SINKS_MAX = 4096;

/**
 * The canonical form of a sink as stored in a row, or undefined when it is no IP (type
 * local/lport sinks are port names). Memoized: the planner and the watcher ask for every Mirror
 * row's sink on every plan, and parsing and formatting the address each time was most of the
 * applier's CPU with a thousand mirrors.
 */
export function canonicalSink(sink: string): string | undefined {
  const known = canonicalSinks.get(sink);
  if (known !== undefined || canonicalSinks.has(sink)) return known;
  const c = canonicalIp(sink);
  if (canonicalSinks.size >= CANONICAL_SINKS_MAX) canonicalSinks.clear();
  canonicalSinks.set(sink, c);
  return c;
}
