/**
 * Small helpers shared by the benchmarks: percentiles, progress on stderr, timing.
 *
 *   const p = percentile([3, 1, 2], 50);          // 2 (nearest rank)
 *   progress("prefill", "10000 ports in 1.2 s");  // "▸ prefill: 10000 ports in 1.2 s" on stderr
 */
import { performance } from "node:perf_hooks";

/** Nearest-rank percentile (the value below which p% of the samples fall); NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** Rounds to one decimal (milliseconds and rates in the report). */
export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const round2 = (x: number): number => Math.round(x * 100) / 100;

export function summary(samples: readonly number[]): string {
  if (samples.length === 0) return "no samples";
  const max = samples.reduce((a, b) => Math.max(a, b), -Infinity);
  return `p50 ${round1(percentile(samples, 50))} ms, p90 ${round1(percentile(samples, 90))} ms, p99 ${round1(percentile(samples, 99))} ms, max ${round1(max)} ms (n=${samples.length})`;
}

/** Progress and findings go to stderr: stdout carries only the final JSON line. */
export function progress(step: string, detail = ""): void {
  process.stderr.write(`▸ ${step}${detail ? `: ${detail}` : ""}\n`);
}

export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sleeps until performance.now() reaches `t` (a paced sender's next slot). */
export async function sleepUntil(t: number): Promise<void> {
  const d = t - now();
  if (d > 0) await sleep(d);
}

/** A failure the benchmark reports as its result (exit 1, no JSON line). */
export class BenchFailure extends Error {
  override name = "BenchFailure";
}
