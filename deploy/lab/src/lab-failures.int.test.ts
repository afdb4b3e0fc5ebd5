/**
 * startLab when things go wrong, and the services hook: a failure mid-start removes
 * exactly what the lab made (not what was there before) and names the failing step
 * with the log that explains it; services are started with the lab's env and stopped
 * with it.
 */
import { httpStatus } from "./services.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  isAlive,
  LabStartError,
  listLeftovers,
  makeTempDir,
  NO_LEFTOVERS,
  readText,
  removeDir,
  startLab,
} from "./index.js";
import { netnsAdd, netnsDel } from "./net.js";

/** A repo with services/<name>/{package.json,dist/main.js}. */
function fakeRepo(services: Record<string, { ready?: string; main?: string }>): string {
  const root = makeTempDir("ovntap-fake-repo-");
  for (const [name, svc] of Object.entries(services)) {
    const dir = join(root, "services", name);
    mkdirSync(join(dir, "dist"), { recursive: true });
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: `@ovntap/${name}`,
        ovntap: { service: true, ...(svc.ready ? { ready: svc.ready } : {}) },
      }),
    );
    if (svc.main) writeFileSync(join(dir, "dist", "main.js"), svc.main);
  }
  // A workspace that is not a service is left alone.
  mkdirSync(join(root, "services", "not-a-service"), { recursive: true });
  writeFileSync(join(root, "services", "not-a-service", "package.json"), "{}");
  return root;
}

const GOOD = `
const keys = ["NATS_URL", "OVN_NB_DB", "LAB_NODE", "LAB_SINK_IP", "LAB_CAPTURE_IF"];
process.stdout.write(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))) + "\\n");
process.stdout.write("service ready\\n");
setInterval(() => {}, 1 << 30);
`;
// No ready line: the lab waits for /readyz on the HTTP_PORT it gave (503 at first).
const WEB = `
const http = require("node:http");
const t0 = Date.now();
http.createServer((req, res) => {
  res.statusCode = req.url === "/readyz" && Date.now() - t0 < 300 ? 503 : 200;
  res.end(process.env.HTTP_HOST + ":" + process.env.HTTP_PORT);
}).listen(Number(process.env.HTTP_PORT), process.env.HTTP_HOST);
`;
const CRASH = `process.stderr.write("boom: cannot reach the moon\\n"); process.exit(3);`;

describe("startLab failures and services", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it("cleans up exactly what it made when a step fails, and names the step", async () => {
    const prefix = `of${Math.random().toString(36).slice(2, 6)}`;
    // Someone else's namespace with the name the lab wants for its sink.
    await netnsAdd(`${prefix}-sink`);
    try {
      const err = await startLab({ prefix, services: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LabStartError);
      expect((err as LabStartError).step).toBe("namespaces and links");
      expect((err as LabStartError).message).toMatch(/File exists/);
      // The servers started in parallel are gone, the namespaces made before the failure
      // too; the one that was there before is not touched.
      expect(await listLeftovers(prefix)).toEqual({ ...NO_LEFTOVERS, netns: [`${prefix}-sink`] });
    } finally {
      await netnsDel(`${prefix}-sink`);
    }
  });

  it("starts each service with the lab's env, waits for its ready line, stops it with the lab", async () => {
    const repo = fakeRepo({ good: { ready: "service ready", main: GOOD }, web: { main: WEB } });
    dirs.push(repo);
    const lab = await startLab({ repoRoot: repo });
    try {
      const web = lab.state().services?.find((s) => s.name === "web");
      expect(web).toBeDefined();
      expect(await httpStatus(web!.httpPort, "/readyz")).toBe(200);
      const svc = lab.state().pids.find((p) => p.name === "service-good");
      expect(svc).toBeDefined();
      expect(isAlive(svc!.pid)).toBe(true);
      const seen = JSON.parse(readText(svc!.log).split("\n")[0]!) as Record<string, string>;
      expect(seen).toEqual({
        NATS_URL: lab.env.NATS_URL,
        OVN_NB_DB: lab.env.OVN_NB_DB,
        LAB_NODE: lab.env.LAB_NODE,
        LAB_SINK_IP: lab.env.LAB_SINK_IP,
        LAB_CAPTURE_IF: lab.env.LAB_CAPTURE_IF,
      });
      await lab.stop();
      expect(isAlive(svc!.pid)).toBe(false);
      expect(await listLeftovers(lab.prefix)).toEqual(NO_LEFTOVERS);
    } finally {
      await lab.stop();
    }
  });

  it("fails at the services step with the crashing service's log, and cleans up", async () => {
    const repo = fakeRepo({ good: { ready: "service ready", main: GOOD }, crashy: { main: CRASH } });
    dirs.push(repo);
    const err = await startLab({ repoRoot: repo }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabStartError);
    const e = err as LabStartError;
    expect(e.step).toBe("services");
    expect(e.message).toMatch(/service crashy exited/);
    expect(e.message).toMatch(/boom: cannot reach the moon/);
    const prefix = /ovntap-lab-([a-z0-9]+)-/.exec(e.message)?.[1];
    expect(prefix).toBeDefined();
    expect(await listLeftovers(prefix!)).toEqual(NO_LEFTOVERS);
  });

  it("refuses a service that is not built, naming the fix", async () => {
    const repo = fakeRepo({ unbuilt: {} });
    dirs.push(repo);
    const err = await startLab({ repoRoot: repo }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabStartError);
    expect((err as Error).message).toMatch(/service unbuilt is not built .*npm run build/);
  });
});
