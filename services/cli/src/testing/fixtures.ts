/**
 * Test fixtures: schema-valid mirrors, statuses and one event of every type, and captured
 * stdout/stderr. Only tests import this (it is left out of the build).
 */
import { randomUUID } from "node:crypto";
import { LifecycleEvent, MirrorRecord, MirrorSpec, MirrorStatus } from "@ovntap/contracts";
import type { EventType, LifecycleEventOf } from "@ovntap/contracts";
import type { CliIo } from "../cli.js";
import type { MirrorView } from "../format.js";

export const T0 = Date.parse("2025-01-31T12:00:00.000Z");
export const iso = (ms: number) => new Date(ms).toISOString();

export function makeSpec(overrides: Partial<MirrorSpec> = {}): MirrorSpec {
  return MirrorSpec.parse({
    name: "web",
    namespace: "shop",
    sources: { type: "pods", names: ["web-0"] },
    direction: "both",
    target: { type: "gre", sink: "10.0.0.9" },
    ...overrides,
  });
}

export function makeView(
  spec: MirrorSpec = makeSpec(),
  status: Partial<MirrorStatus> = {},
  at: number = T0,
  generation = 1,
): MirrorView {
  const mirror = MirrorRecord.parse({
    spec,
    generation,
    owner: "alice",
    createdAt: iso(at),
    expiresAt: iso(at + (spec.ttlSeconds ?? 3600) * 1000),
    requestId: randomUUID(),
  });
  const s = MirrorStatus.parse({
    phase: "Pending",
    generation,
    observedGeneration: 0,
    ports: [],
    updatedAt: iso(at),
    ...status,
  });
  return { mirror, status: s };
}

const DETAILS: { [T in EventType]: LifecycleEventOf<T>["detail"] } = {
  requested: { op: "create", ttlSeconds: 600 },
  accepted: { op: "create", expiresAt: "2025-01-31T13:00:00.000Z" },
  rejected: { op: "create", error: { code: "ALREADY_EXISTS", message: "mirror shop/web exists" } },
  applying: { reason: "create", attempt: 1 },
  applied: { rows: ["ovntap-shop-web"], key: 7, sink: "10.0.0.9", nbCfg: 12 },
  active: { ports: ["web-0.shop"], hvCfg: 12 },
  degraded: { reason: "PortMissing", message: "web-1 has no logical switch port", ports: ["web-0.shop"] },
  failed: { code: "KEY_IN_USE", message: "key 7 is used towards 10.0.0.9", retryable: false },
  expired: { expiresAt: "2025-01-31T13:00:00.000Z" },
  deleted: { reason: "request" },
  drift_repaired: { repairs: [{ table: "Mirror", name: "ovntap-shop-web", action: "created" }] },
  port_attached: { port: "web-1.shop", pod: { namespace: "shop", name: "web-1" }, node: "node-1" },
  port_detached: { port: "web-1.shop", reason: "pod_deleted" },
  extended: {
    ttlSeconds: 7200,
    previousExpiresAt: "2025-01-31T13:00:00.000Z",
    expiresAt: "2025-01-31T14:00:00.000Z",
  },
  capture_drops: {
    node: "node-1",
    drops: 42,
    since: "2025-01-31T12:00:00.000Z",
    until: "2025-01-31T12:01:00.000Z",
  },
  dataplane_error: {
    component: "ovs",
    message: "could not add network device ovn-abc (File exists)",
    node: "node-1",
    bridge: "br-int",
  },
  dataplane_ok: {
    component: "ovs",
    node: "node-1",
    bridge: "br-int",
    previous: "could not add network device ovn-abc (File exists)",
  },
};

export function makeEvent<T extends EventType>(
  type: T,
  overrides: Partial<Omit<LifecycleEventOf<T>, "type">> = {},
): LifecycleEventOf<T> {
  return LifecycleEvent.parse({
    eventId: randomUUID(),
    time: iso(T0),
    mirror: "web",
    namespace: "shop",
    generation: 1,
    principal: "alice",
    requestId: "req-1",
    type,
    detail: DETAILS[type],
    ...overrides,
  }) as LifecycleEventOf<T>;
}

export const ALL_EVENT_TYPES = Object.keys(DETAILS) as EventType[];

export interface Captured {
  readonly io: Pick<CliIo, "stdout" | "stderr">;
  out(): string;
  err(): string;
  /** Resolves once stdout contains `text`, or rejects after `ms`. */
  waitForOut(text: string, ms?: number): Promise<void>;
}

export function capture(): Captured {
  let out = "";
  let err = "";
  return {
    io: {
      stdout: {
        write: (s: string) => {
          out += s;
          return true;
        },
      },
      stderr: {
        write: (s: string) => {
          err += s;
          return true;
        },
      },
    },
    out: () => out,
    err: () => err,
    waitForOut(text, ms = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + ms;
        const check = () => {
          if (out.includes(text)) return resolve();
          if (Date.now() > deadline)
            return reject(new Error(`stdout never showed ${JSON.stringify(text)}:\n${out}`));
          setTimeout(check, 20);
        };
        check();
      });
    },
  };
}
