import { createLogger } from "@ovntap/runtime";
import { waitUntil } from "@ovntap/k8s/testing";
import { describe, expect, it } from "vitest";
import { createWorkQueue } from "./queue.js";

const logger = createLogger({ name: "queue-test", level: "silent" });

/** A handler whose passes wait until the test releases them. */
function gated() {
  const runs: string[] = [];
  const gates: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const handle = async (key: string) => {
    runs.push(key);
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise<void>((resolve) => gates.push(resolve));
    active--;
    return undefined;
  };
  return {
    runs,
    handle,
    releaseAll: () => gates.splice(0).forEach((g) => g()),
    get waiting() {
      return gates.length;
    },
    get maxActive() {
      return maxActive;
    },
  };
}

describe("the work queue", () => {
  it("runs a key queued twice once, and a key changed while running once more after", async () => {
    const h = gated();
    const q = createWorkQueue({ concurrency: 4, retryBaseMs: 10, retryMaxMs: 100, logger, handle: h.handle });
    q.add("a");
    q.add("a");
    await waitUntil(() => h.waiting === 1, "a running");
    q.add("a"); // a change while a runs
    q.add("a");
    h.releaseAll();
    await waitUntil(() => h.waiting === 1, "a running again");
    h.releaseAll();
    await waitUntil(() => q.depth === 0, "the queue empty");
    expect(h.runs).toEqual(["a", "a"]);
    expect(h.maxActive).toBe(1);
    await q.stop();
  });

  it("runs different keys side by side, up to its concurrency", async () => {
    const h = gated();
    const q = createWorkQueue({ concurrency: 2, retryBaseMs: 10, retryMaxMs: 100, logger, handle: h.handle });
    for (const k of ["a", "b", "c"]) q.add(k);
    await waitUntil(() => h.waiting === 2, "two running");
    expect(h.runs).toEqual(["a", "b"]);
    h.releaseAll();
    await waitUntil(() => h.waiting === 1, "c running");
    h.releaseAll();
    await waitUntil(() => q.depth === 0, "the queue empty");
    expect(h.runs).toEqual(["a", "b", "c"]);
    expect(h.maxActive).toBe(2);
    await q.stop();
  });

  it("retries a failing key until it succeeds, and honours a pass it asks for", async () => {
    const attempts: string[] = [];
    let failuresLeft = 3;
    let requeued = false;
    const results: string[] = [];
    const q = createWorkQueue({
      concurrency: 1,
      retryBaseMs: 5,
      retryMaxMs: 50,
      logger,
      onResult: (r) => results.push(r),
      handle: () => {
        attempts.push("k");
        if (failuresLeft-- > 0) return Promise.reject(new Error("not yet"));
        if (!requeued) {
          requeued = true;
          return Promise.resolve(5);
        }
        return Promise.resolve(undefined);
      },
    });
    q.add("k");
    await waitUntil(() => attempts.length === 5, "three failures, a success asking for more, a last pass");
    expect(results).toEqual(["error", "error", "error", "ok", "ok"]);
    await q.stop();
  });

  it("stops taking work and waits for the passes running", async () => {
    const h = gated();
    const q = createWorkQueue({ concurrency: 1, retryBaseMs: 10, retryMaxMs: 100, logger, handle: h.handle });
    q.add("a");
    q.add("b");
    await waitUntil(() => h.waiting === 1, "a running");
    let stopped = false;
    const stopping = q.stop().then(() => (stopped = true));
    q.add("c");
    expect(stopped).toBe(false);
    h.releaseAll();
    await stopping;
    expect(h.runs).toEqual(["a"]);
  });
});
