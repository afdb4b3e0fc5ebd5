/**
 * The key map: which mirrors the store's statuses bind to which (sink, tunnel type, key), and the
 * index the hot path looks them up in.
 */
import { MirrorRecord, MirrorStatus } from "@ovntap/contracts";
import type { StoredMirror } from "@ovntap/store";
import { describe, expect, it } from "vitest";
import { bindingsFromStore, TunnelIndex } from "./keymap.js";
import { ENCAP_ERSPAN2, ENCAP_ERSPAN3, ENCAP_GRE } from "./tunnel.js";

const NOW = "2026-01-01T00:00:00.000Z";

function stored(
  name: string,
  status: Partial<MirrorStatus> & { phase: MirrorStatus["phase"] },
  extra: object = {},
): StoredMirror {
  const record = MirrorRecord.parse({
    spec: {
      name,
      namespace: "shop",
      sources: { type: "pods", names: ["web-0"] },
      direction: "both",
      target: { type: "gre", sink: "198.51.100.2" },
      ...extra,
    },
    generation: 3,
    owner: "alice",
    createdAt: NOW,
    expiresAt: NOW,
    requestId: `req-${name}`,
  });
  const s = MirrorStatus.parse({
    generation: 3,
    observedGeneration: 3,
    ports: [],
    updatedAt: NOW,
    ...status,
  });
  return { record, status: s, deleting: false };
}

describe("bindingsFromStore", () => {
  it("binds every tunnel of a status, falls back to key/sessionId, and leaves out what cannot carry packets", () => {
    const { bindings, conflicts } = bindingsFromStore([
      stored("both", {
        phase: "Active",
        sink: "198.51.100.2",
        key: 7,
        tunnels: [
          { type: "gre", index: 7, direction: "egress" },
          { type: "gre", index: 8, direction: "ingress" },
        ],
      }),
      stored("old-gre", {
        phase: "Degraded",
        reason: "ChassisNotSynced",
        message: "x",
        sink: "198.51.100.2",
        key: 9,
      }),
      stored("old-erspan", { phase: "Applying", sink: "::ffff:198.51.100.3", sessionId: 4 }),
      stored("pending", { phase: "Pending" }),
      stored("expired", { phase: "Expired", sink: "198.51.100.2", key: 10 }),
    ]);
    expect(conflicts).toEqual([]);
    expect(bindings.map((b) => [b.name, b.sink, b.tunnels])).toEqual([
      [
        "both",
        "198.51.100.2",
        [
          { type: "gre", index: 7 },
          { type: "gre", index: 8 },
        ],
      ],
      ["old-erspan", "198.51.100.3", [{ type: "erspan", index: 4 }]],
      ["old-gre", "198.51.100.2", [{ type: "gre", index: 9 }]],
    ]);
    expect(bindings[0]).toMatchObject({ namespace: "shop", generation: 3, requestId: "req-both" });
  });

  it("keeps spec filter and snaplen", () => {
    const { bindings } = bindingsFromStore([
      stored(
        "f",
        { phase: "Active", sink: "198.51.100.2", key: 1 },
        { filter: { protocols: ["tcp"] }, snaplen: 128 },
      ),
    ]);
    expect(bindings[0]).toMatchObject({ filter: { protocols: ["tcp"] }, snaplen: 128 });
  });

  it("gives a tunnel two mirrors claim to the first by name and reports the other", () => {
    const { bindings, conflicts } = bindingsFromStore([
      stored("b", { phase: "Active", sink: "198.51.100.2", key: 5 }),
      stored("a", { phase: "Active", sink: "198.51.100.2", key: 5 }),
    ]);
    expect(bindings.map((b) => b.name)).toEqual(["a"]);
    expect(conflicts).toEqual([
      { sink: "198.51.100.2", type: "gre", index: 5, kept: "shop/a", dropped: "shop/b" },
    ]);
  });
});

describe("TunnelIndex", () => {
  it("looks up by sink, tunnel type and key; ERSPAN II and III share the erspan tunnels", () => {
    const i = new TunnelIndex<string>();
    i.add("198.51.100.2", "gre", 7, "gre7");
    i.add("198.51.100.2", "erspan", 7, "erspan7");
    i.add("2001:DB8::2", "gre", 7, "v6");
    const v4 = 0xc6336402; // 198.51.100.2
    expect(i.get(4, v4, 0, 0, 0, ENCAP_GRE, 7)).toBe("gre7");
    expect(i.get(4, v4, 0, 0, 0, ENCAP_ERSPAN2, 7)).toBe("erspan7");
    expect(i.get(4, v4, 0, 0, 0, ENCAP_ERSPAN3, 7)).toBe("erspan7");
    expect(i.get(4, v4, 0, 0, 0, ENCAP_GRE, 8)).toBeUndefined();
    expect(i.get(4, v4 + 1, 0, 0, 0, ENCAP_GRE, 7)).toBeUndefined();
    expect(i.get(6, 0x20010db8, 0, 0, 2, ENCAP_GRE, 7)).toBe("v6");
    expect(i.size).toBe(3);
  });
});
