/**
 * Reconnect delays for NATS and Redis: exponential, capped, with "equal jitter" (half
 * the capped delay fixed, half random). The fixed half keeps each client backing off;
 * the random half spreads a fleet of replicas out after a server restart so they do
 * not all dial it in the same millisecond.
 *
 *   jitteredBackoff(0, { baseMs: 100, maxMs: 5_000 })  // 50..100
 *   jitteredBackoff(9, { baseMs: 100, maxMs: 5_000 })  // 2500..5000
 */
export interface BackoffOptions {
  /** Delay of the first retry (before jitter). */
  baseMs: number;
  /** Ceiling of every delay. */
  maxMs: number;
  /** Source of randomness in [0, 1); Math.random by default. */
  random?: () => number;
}

export function jitteredBackoff(attempt: number, opts: BackoffOptions): number {
  const { baseMs, maxMs, random = Math.random } = opts;
  // 2 ** 30 already exceeds any sane ceiling; clamping the exponent keeps it finite.
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const capped = Math.min(maxMs, baseMs * 2 ** exp);
  return Math.round(capped / 2 + random() * (capped / 2));
}
