/**
 * Waiting on a condition with a deadline (never a fixed sleep): polls `cond` every `intervalMs`
 * and resolves with its first truthy value.
 *
 *   const pod = await waitUntil(() => index.pod("ns", "web-1"), "web-1 in the index");
 */
export async function waitUntil<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
