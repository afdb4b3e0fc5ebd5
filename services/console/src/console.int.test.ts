/**
 * The console end to end on the lab, seen in a real browser: every service runs as its own
 * process (the console too, started by the lab from dist/), a `--collector` mirror of pod-a is
 * made with the real `ovntap create`, the pods talk (ICMP, TCP, UDP), and headless Chromium
 * (Debian's, driven by playwright-core) opens the console. Asserted on what the page shows: the
 * mirror's row with its phase, owner, sink and key; rates above zero that change while the pods
 * talk; the lifecycle events; a pcap downloaded through the page's link that holds the pods'
 * traffic. A full-page screenshot is kept as `artifacts/console.png` at the repository root.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import type { Lab } from "@ovntap/lab";
import { makeTempDir, podTraffic, removeDir, requireBinary, run, startLab, waitFor } from "@ovntap/lab";
import { decodeFrame, decodePcap, formatIp } from "@ovntap/packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = join(import.meta.dirname, "..", "..", "..");
const ARTIFACTS = join(repoRoot, "artifacts");
/** The owner's principal: markup, to show that the page renders it as text. */
const OWNER = 'console-test <img src=x onerror="globalThis.pwned=1"> & "friends"';
const ROW = '[data-mirror="default/tap"]';
/** Deadlines against hangs, not speed checks: this machine is shared and often busy. */
const DEADLINE = 90_000;

let lab: Lab;
let dir: string;
let context: BrowserContext;
let page: Page;
let consoleUrl: string;
/** Script errors and console errors of the page (a CSP violation is one). */
const pageErrors: string[] = [];
let stopTraffic: () => void = () => undefined;
let traffic: Promise<void> = Promise.resolve();

async function ovntap(...args: string[]) {
  const r = await run(process.execPath, [join(repoRoot, "services", "cli", "bin", "ovntap.js"), ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: dir, NATS_URL: lab.env.NATS_URL, OVNTAP_PRINCIPAL: OWNER },
    allowFail: true,
    timeoutMs: 180_000,
  });
  expect(r.code, `ovntap ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r;
}

const text = async (selector: string) => ((await page.locator(selector).first().textContent()) ?? "").trim();
/** A number as the page renders it ("1,234", "12.5", "3.40 kB/s" → 3400). */
function parseRendered(s: string): number {
  const m = /^([\d,]+(?:\.\d+)?)\s*(k|M|G|T)?/.exec(s.trim());
  if (!m) return NaN;
  const scale = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] as "k"] ?? 1;
  return Number((m[1] ?? "").replaceAll(",", "")) * scale;
}

beforeAll(async () => {
  dir = makeTempDir("ovntap-console-lab-");
  const policy = join(dir, "policy.json");
  writeFileSync(
    policy,
    JSON.stringify({
      version: 1,
      trustRequestPrincipal: true,
      protectedNamespaces: ["kube-system"],
      maxActiveMirrors: 20,
      maxTtlSeconds: 86_400,
      rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"] }],
    }),
  );
  lab = await startLab({ serviceEnv: { POLICY_FILE: policy } });
  const svc = lab.services().find((s) => s.name === "console");
  if (svc === undefined) throw new Error("the lab did not start the console: is services/console built?");
  consoleUrl = `http://127.0.0.1:${svc.httpPort}`;

  await ovntap(
    ...["create", "tap", "-n", "default", "--pod", "pod-a", "--direction", "both", "--collector"],
    ...["--ttl", "600", "--wait"],
  );
  const until = new Promise<void>((resolve) => (stopTraffic = resolve));
  traffic = podTraffic(lab, until);

  context = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
    // Debian's chromium (apt-get install chromium), driven over CDP by playwright-core.
    executablePath: await requireBinary("chromium", "chromium"),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(msg.text());
  });
  await page.goto(consoleUrl);
}, 240_000);

afterAll(async () => {
  stopTraffic();
  await traffic.catch(() => undefined);
  await context?.close();
  await lab?.stop();
  if (dir) removeDir(dir);
});

describe("the console on the lab, in Chromium", () => {
  it("shows the mirror with its phase, owner, sink, key and time to expiry", async () => {
    await page
      .locator(`${ROW} [data-field="phase"]`)
      .filter({ hasText: /^Active$/ })
      .waitFor({ timeout: DEADLINE });
    expect(await text(`${ROW} [data-field="mirror"]`)).toContain("tap");
    // the owner is shown as the text it is, and nothing in it ran
    expect(await text(`${ROW} [data-field="owner"]`)).toBe(OWNER);
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate("typeof globalThis.pwned")).toBe("undefined");
    expect(await text(`${ROW} [data-field="sink"]`)).toContain(lab.env.LAB_SINK_IP);
    expect(await text(`${ROW} [data-field="sink"]`)).toContain("collector");
    expect(await text(`${ROW} [data-field="key"]`)).toMatch(/^gre \d+/);
    // a 600 s TTL counts down from under 10 minutes
    const first = await text(`${ROW} [data-field="expires"]`);
    expect(first).toMatch(/^\d+m \d{2}s$/);
    expect(Number(first.split("m")[0])).toBeLessThan(10);
    await waitFor(async () => (await text(`${ROW} [data-field="expires"]`)) !== first, {
      what: "the time to expiry to count down",
      timeoutMs: DEADLINE,
      intervalMs: 250,
    });
    expect(await text("#connection")).toBe("Live");
  });

  it("shows packet and byte rates above zero that change while the pods talk", async () => {
    const pps = `${ROW} [data-field="pps"]`;
    const bps = `${ROW} [data-field="bps"]`;
    const readings: number[] = [];
    await waitFor(
      async () => {
        const v = parseRendered(await text(pps));
        if (v > 0 && readings[readings.length - 1] !== v) readings.push(v);
        return readings.length >= 2;
      },
      { what: "two different packet rates above zero on the page", timeoutMs: DEADLINE, intervalMs: 250 },
    );
    expect(readings[0]).toBeGreaterThan(0);
    expect(readings[1]).toBeGreaterThan(0);
    expect(readings[1]).not.toBe(readings[0]);
    expect(parseRendered(await text(bps))).toBeGreaterThan(0);
    // the sparkline has drawn something above its base line
    const points = (await page.locator(`${ROW} .spark-packets .spark-line`).getAttribute("points")) ?? "";
    expect(new Set(points.split(" ").map((p) => p.split(",")[1])).size).toBeGreaterThan(1);
    expect(await text(`${ROW} [data-field="totals"]`)).toMatch(/^[\d,]+ packets/);
  });

  it("lists the mirror's lifecycle events", async () => {
    const wanted = ["accepted", "applying", "applied", "active"];
    await waitFor(
      async () => {
        const mirrors = await page.locator('#events tbody [data-field="mirror"]').allTextContents();
        const types = await page.locator('#events tbody [data-field="type"]').allTextContents();
        const mine = types.filter((_, i) => mirrors[i] === "default/tap");
        return wanted.every((t) => mine.includes(t));
      },
      {
        what: `events ${wanted.join(", ")} of default/tap on the page`,
        timeoutMs: DEADLINE,
        intervalMs: 250,
      },
    );
    expect(await text("#events-feed")).toBe("event feed: live");
  });

  it("downloads the last N seconds as a pcap of the pods' traffic through the page's link", async () => {
    await page.selectOption("#pcap-seconds", "60");
    const link = page.locator(`${ROW} [data-field="pcap"]`);
    expect(await link.textContent()).toBe("pcap, last 60 s");
    expect(await link.getAttribute("href")).toBe("/mirrors/default/tap/pcap?seconds=60");
    // The pods' loop (ping, a TCP exchange, a UDP exchange) may not have gone round once yet:
    // download again until the file holds all three.
    let n = 0;
    const got = await waitFor(
      async () => {
        const [download] = await Promise.all([
          page.waitForEvent("download", { timeout: DEADLINE }),
          link.click(),
        ]);
        expect(download.suggestedFilename()).toMatch(/^default-tap-\d{8}T\d{6}Z\.pcap$/);
        const file = join(dir, `download-${n++}.pcap`);
        await download.saveAs(file);
        const f = decodePcap(readFileSync(file));
        if (!f.ok) throw new Error(`the download is not a pcap: ${f.reason}`);
        const protocols = new Set<string>();
        for (const r of f.records) {
          const d = decodeFrame(r.data);
          if (d.ok && d.l4 !== undefined) protocols.add(d.l4.protocol);
        }
        return protocols.size === 3 ? { file, f } : undefined;
      },
      { what: "a download holding ICMP, TCP and UDP", timeoutMs: DEADLINE, intervalMs: 1_000 },
    );
    const { file, f } = got;
    expect(f.error).toBeUndefined();
    const pods = new Set([lab.env.LAB_POD_A_IP, lab.env.LAB_POD_B_IP]);
    const protocols = new Set<string>();
    const payloads: string[] = [];
    let ipPackets = 0;
    for (const r of f.records) {
      const d = decodeFrame(r.data);
      if (!d.ok || d.ip === undefined) continue; // ARP
      ipPackets++;
      const [src, dst] = [formatIp(d.ip.src), formatIp(d.ip.dst)];
      expect(pods.has(src) && pods.has(dst), `${src} > ${dst}`).toBe(true);
      if (d.l4 !== undefined) {
        protocols.add(d.l4.protocol);
        if (d.l4.payload.length > 0) payloads.push(d.l4.payload.toString("latin1"));
      }
    }
    expect(protocols).toEqual(new Set(["icmp", "tcp", "udp"]));
    // in time order, though the two tunnels of this `both` mirror arrive as two batch streams
    const times = f.records.map((r) => BigInt(r.seconds) * 1_000_000_000n + BigInt(r.nanos));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    expect(payloads.some((p) => p.includes("GET / HTTP/1.0"))).toBe(true);
    expect(payloads.some((p) => p.includes("ovntap demo: a UDP request"))).toBe(true);
    // and tshark, an independent decoder, reads the same packets between the pods
    const rows = (await run("tshark", ["-r", file, "-T", "fields", "-e", "ip.src", "-e", "ip.dst"])).stdout
      .split("\n")
      .filter((l) => l.trim() !== "");
    expect(rows.length).toBe(ipPackets);
    expect(rows).toContain(`${lab.env.LAB_POD_A_IP}\t${lab.env.LAB_POD_B_IP}`);
    expect(rows).toContain(`${lab.env.LAB_POD_B_IP}\t${lab.env.LAB_POD_A_IP}`);
  });

  it("keeps a full-page screenshot as a test artifact", async () => {
    // A picture worth keeping: charts with some history in them.
    const line = page.locator(`${ROW} .spark-packets .spark-line`);
    await waitFor(
      async () => {
        const points = ((await line.getAttribute("points")) ?? "").split(" ");
        // a second without packets sits on the base line, y = 27.0
        return points.filter((p) => p.split(",")[1] !== "27.0").length >= 30;
      },
      { what: "30 seconds of traffic in the page's charts", timeoutMs: DEADLINE, intervalMs: 500 },
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, "console.png");
    await page.screenshot({ path: file, fullPage: true });
    const png = readFileSync(file);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(statSync(file).size).toBeGreaterThan(20_000);
    // and the page ran without a script error or a blocked resource all along
    expect(pageErrors).toEqual([]);
  });
});
