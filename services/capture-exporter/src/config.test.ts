/**
 * The exporter's environment: defaults, the source it picks, and refusals that name the variable.
 */
import { ConfigError, loadConfig } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import { DEFAULT_ENCAP_BPF, ExporterEnv, exporterConfig } from "./config.js";

const base = { NATS_URL: "nats://127.0.0.1:4222", REDIS_URL: "redis://127.0.0.1:6379", NODE_NAME: "node-1" };

function problems(env: Record<string, string>): string[] {
  try {
    exporterConfig(loadConfig(ExporterEnv, { ...base, ...env }));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable);
    throw err;
  }
  return [];
}

describe("exporter configuration", () => {
  it("captures GRE and ERSPAN on CAPTURE_INTERFACE with the documented defaults", () => {
    const { config, source } = exporterConfig(
      loadConfig(ExporterEnv, { ...base, CAPTURE_INTERFACE: "eth1" }),
    );
    expect(source).toEqual({ kind: "live", device: "eth1", bpf: DEFAULT_ENCAP_BPF, bufferBytes: 32 << 20 });
    expect(config).toMatchObject({
      node: "node-1",
      mode: "encap",
      batch: { maxPackets: 1024, maxBytes: 262144, maxDelayMs: 50 },
      pcapOverIp: { host: "0.0.0.0", port: 57012 },
      captureStream: undefined,
      dedupWindowMs: 0,
      flowIntervalMs: 5000,
    });
  });

  it("replays CAPTURE_FILE, reads a local mirror interface, keeps OVNTAP_CAPTURE, turns PCAP-over-IP off", () => {
    const file = exporterConfig(
      loadConfig(ExporterEnv, {
        ...base,
        CAPTURE_FILE: "in.pcap",
        CAPTURE_REPLAY_TIMING: "original",
        PCAP_OVER_IP_PORT: "0",
      }),
    );
    expect(file.source).toEqual({ kind: "file", path: "in.pcap", timing: "original" });
    expect(file.config.pcapOverIp).toBeUndefined();
    const local = exporterConfig(
      loadConfig(ExporterEnv, {
        ...base,
        CAPTURE_MODE: "ethernet",
        CAPTURE_INTERFACE: "mirror0",
        CAPTURE_MIRROR: "shop/web",
        CAPTURE_STREAM_MAX_AGE_MS: "3600000",
      }),
    );
    expect(local.source).toMatchObject({ kind: "live", device: "mirror0", bpf: "" });
    expect(local.config.localMirror).toEqual({ namespace: "shop", name: "web" });
    expect(local.config.captureStream).toEqual({ maxAgeMs: 3600000, maxBytes: 1 << 30, storage: "file" });
  });

  it("names the variables of combinations that cannot work", () => {
    expect(problems({})).toEqual(["CAPTURE_INTERFACE"]);
    expect(problems({ CAPTURE_INTERFACE: "eth1", CAPTURE_FILE: "x.pcap" })).toEqual(["CAPTURE_FILE"]);
    expect(problems({ CAPTURE_INTERFACE: "eth1", CAPTURE_MODE: "ethernet" })).toEqual(["CAPTURE_MIRROR"]);
    expect(problems({ CAPTURE_INTERFACE: "eth1", CAPTURE_MIRROR: "shop/web" })).toEqual(["CAPTURE_MIRROR"]);
    expect(problems({ CAPTURE_INTERFACE: "eth1", BATCH_MAX_BYTES: "41943040" })).toEqual([
      "NATS_MAX_INFLIGHT_BYTES",
      "QUEUE_MAX_BYTES",
    ]);
    expect(() => loadConfig(ExporterEnv, { ...base, FLOW_INTERVAL_MS: "500" })).toThrow(/FLOW_INTERVAL_MS/);
    expect(() => loadConfig(ExporterEnv, { ...base, CAPTURE_MIRROR: "Shop/web" })).toThrow(/CAPTURE_MIRROR/);
  });
});
