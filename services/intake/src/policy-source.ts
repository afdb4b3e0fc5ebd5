/**
 * Where intake gets its policy: a fixed one, or a file watched for changes.
 *
 *     const policy = await watchPolicyFile("/etc/ovntap/policy.yaml", { logger });
 *     policy.current().grant(identity, "create", "shop");
 *     await policy.close();
 *
 * The directory is watched, not the file: editors and Kubernetes ConfigMap updates replace the file
 * (rename or a `..data` symlink swap), which a watch on the old inode would never see. Events are
 * debounced; the file is re-read and, when its text changed, validated. An invalid file is logged
 * with every problem and the last good policy stays in force.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "@ovntap/runtime";
import { compilePolicy, DEFAULT_POLICY, parsePolicy, PolicyError } from "./policy.js";
import type { CompiledPolicy, Policy } from "./policy.js";

export interface PolicySource {
  current(): CompiledPolicy;
  /** Counts successful loads, starting at 1. */
  readonly version: number;
  close(): Promise<void>;
}

export function staticPolicy(policy: Policy = DEFAULT_POLICY): PolicySource {
  const compiled = compilePolicy(policy);
  return { current: () => compiled, version: 1, close: () => Promise.resolve() };
}

export interface WatchPolicyOptions {
  logger: Logger;
  /** Quiet time after the last change before reloading; default 200 ms. */
  debounceMs?: number;
  /** Called after each reload attempt (for metrics and tests). */
  onReload?: (result: { ok: true; version: number } | { ok: false; error: PolicyError }) => void;
}

/** Loads the file (throws PolicyError when it is invalid at start) and reloads it on change. */
export async function watchPolicyFile(path: string, opts: WatchPolicyOptions): Promise<PolicySource> {
  const log = opts.logger.child({ component: "policy", file: path });
  const debounceMs = opts.debounceMs ?? 200;

  const read = async (): Promise<{ text: string; policy: Policy }> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      throw new PolicyError(path, [{ path: "", message: `cannot be read: ${(err as Error).message}` }], {
        cause: err,
      });
    }
    return { text, policy: parsePolicy(text, path) };
  };

  const first = await read();
  let compiled = compilePolicy(first.policy);
  let lastText = first.text;
  let version = 1;
  log.info({ version, rules: first.policy.rules.length }, "policy loaded");

  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let reloading: Promise<void> = Promise.resolve();

  const reload = async () => {
    if (closed) return;
    let next: { text: string; policy: Policy };
    try {
      next = await read();
    } catch (err) {
      const error =
        err instanceof PolicyError ? err : new PolicyError(path, [{ path: "", message: String(err) }]);
      log.error({ issues: error.issues, version }, "policy reload failed, keeping the last good policy");
      opts.onReload?.({ ok: false, error });
      return;
    }
    if (next.text === lastText) return;
    compiled = compilePolicy(next.policy);
    lastText = next.text;
    version++;
    log.info({ version, rules: next.policy.rules.length }, "policy reloaded");
    opts.onReload?.({ ok: true, version });
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(reload);
    }, debounceMs);
  };

  const name = basename(path);
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      // Some platforms omit the name; a ConfigMap swaps `..data`: reload on anything but obvious noise.
      if (file === null || file === name || file.startsWith("..") || !file.startsWith(".")) schedule();
    });
  } catch (err) {
    throw new PolicyError(path, [{ path: "", message: `cannot be watched: ${(err as Error).message}` }], {
      cause: err,
    });
  }
  watcher.on("error", (err) => log.warn({ err }, "policy watch failed"));

  return {
    current: () => compiled,
    get version() {
      return version;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
      await reloading;
    },
  };
}
