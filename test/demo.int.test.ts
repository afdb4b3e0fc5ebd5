/**
 * `npm run lab` (the lab CLI's `demo`) end to end: the packets it prints are the pods' real
 * traffic — checked field by field (tshark) against tcpdump inside pod-a's namespace over the
 * same interval — its summary and the mirror's events are printed, and nothing is left after.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Capture, makeTempDir, removeDir, runDemo, startCapture } from "@ovntap/lab";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "./support/harness.js";
import { field, notSeen, packetsOf, tsharkRows } from "./support/packets.js";

const dir = makeTempDir("ovntap-demo-");
afterAll(() => removeDir(dir));

describe("npm run lab", () => {
  it("prints the pods' real traffic, a summary and the events, then leaves nothing behind", async () => {
    let printed = "";
    let podA: Capture | undefined;
    let reference: Buffer | undefined;
    const count = 16;
    const r = await runDemo({
      repoRoot,
      count,
      out: (t) => (printed += t),
      pcapOut: join(dir, "demo.pcap"),
      onLab: async (lab) => {
        podA = await startCapture({ iface: "eth0", netns: lab.env.LAB_POD_A_NS });
      },
      afterCapture: async (lab) => {
        // The originals of the last mirrored packets have long passed eth0; one more ping flushes tcpdump.
        await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });
        reference = await podA?.stop();
      },
    });

    // One readable line per packet, like tcpdump, between the pods' addresses.
    expect(r.lines).toHaveLength(count);
    for (const line of r.lines) expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{6} (IP|ARP)/);
    expect(r.lines.some((l) => / > 10\.16\.0\.12.*ICMP echo request/.test(l))).toBe(true);

    // The same packets (the second subscriber's pcap) are ones tcpdump saw in pod-a.
    expect(await packetsOf(r.pcap)).toHaveLength(count);
    const refFile = join(dir, "pod-a.pcap");
    writeFileSync(refFile, reference ?? Buffer.alloc(0));
    const got = await tsharkRows(r.pcap);
    const seen = await tsharkRows(refFile);
    expect(notSeen(got, seen), `seen in pod-a:\n${seen.join("\n")}`).toEqual([]);
    expect(new Set(got.map((row) => field(row, "ip.proto")).filter(Boolean)).size).toBeGreaterThan(1);

    expect(r.summary).toMatch(new RegExp(`${count} packets captured .* nothing lost`));
    expect(r.events.map((e) => e.split(/\s+/)[2])).toEqual([
      "requested",
      "accepted",
      "applying",
      "applied",
      "active",
    ]);
    expect(printed).toContain("✓ nothing left behind");
    expect(r.leftovers).toBe(false);
  }, 180_000);
});
