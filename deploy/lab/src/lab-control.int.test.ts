/**
 * Fault injection on a running lab: services killed and started again the way the lab first
 * started them (same environment, same HTTP port), servers stopped and started with the same
 * files, socket and port, and a teardown that still finds every process after the restarts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CommandError,
  isAlive,
  type Lab,
  listLeftovers,
  makeTempDir,
  NO_LEFTOVERS,
  readState,
  readText,
  removeDir,
  startLab,
} from "./index.js";
import { httpStatus } from "./services.js";

/** Prints its environment (one JSON line per start), then a ready line; serves /readyz on HTTP_PORT. */
const SERVICE = `
const http = require("node:http");
const keys = ["NATS_URL", "HTTP_PORT", "LAB_NODE", "OVNTAP_TEST_SETTING"];
process.stdout.write(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))) + "\\n");
http.createServer((req, res) => res.end("ok")).listen(Number(process.env.HTTP_PORT), process.env.HTTP_HOST, () =>
  process.stdout.write("control service ready\\n"),
);
process.on("SIGTERM", () => { process.stdout.write("graceful stop\\n"); process.exit(0); });
`;

function fakeRepo(): string {
  const root = makeTempDir("ovntap-control-repo-");
  for (const [name, ready] of [
    ["alpha", "control service ready"],
    ["beta", undefined],
  ] as const) {
    const dir = join(root, "services", name);
    mkdirSync(join(dir, "dist"), { recursive: true });
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({ name: `@ovntap/${name}`, ovntap: { service: true, ...(ready ? { ready } : {}) } }),
    );
    writeFileSync(join(dir, "dist", "main.js"), SERVICE);
  }
  return root;
}

/** The environment a service printed at each of its starts. */
const starts = (log: string) =>
  readText(log)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, string | undefined>);

function redisCommand(port: number, command: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let buf = "";
    s.setTimeout(5_000, () => s.destroy(new Error("no answer")));
    s.on("error", reject);
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      if (until.test(buf)) {
        s.destroy();
        resolve(buf);
      }
    });
    s.write(command);
  });
}

describe("lab fault injection", () => {
  const repo = fakeRepo();
  let lab: Lab | undefined;
  afterAll(async () => {
    await lab?.stop();
    removeDir(repo);
  });

  it("kills a service and starts it again with the same environment and HTTP port", async () => {
    lab = await startLab({ repoRoot: repo, serviceEnv: { OVNTAP_TEST_SETTING: "from-the-test" } });
    const before = lab.services();
    expect(before.map((s) => s.name)).toEqual(["alpha", "beta"]);
    expect(before.every((s) => s.running)).toBe(true);
    const alpha = before[0]!;
    expect(starts(alpha.log)).toEqual([
      {
        NATS_URL: lab.env.NATS_URL,
        HTTP_PORT: String(alpha.httpPort),
        LAB_NODE: lab.env.LAB_NODE,
        OVNTAP_TEST_SETTING: "from-the-test",
      },
    ]);

    await lab.killService("alpha");
    expect(isAlive(alpha.pid)).toBe(false);
    expect(lab.services().find((s) => s.name === "alpha")?.running).toBe(false);
    expect(await httpStatus(alpha.httpPort, "/readyz")).toBe(0);

    // Ready again means a ready line of this run, not the one the first run left in the log.
    const again = await lab.startService("alpha");
    expect(again).toMatchObject({ name: "alpha", httpPort: alpha.httpPort, log: alpha.log, running: true });
    expect(again.pid).not.toBe(alpha.pid);
    expect(await httpStatus(alpha.httpPort, "/readyz")).toBe(200);
    const runs = starts(alpha.log);
    expect(runs).toHaveLength(2);
    expect(runs[1]).toEqual(runs[0]);
    await expect(lab.startService("alpha")).rejects.toThrow(/still runs/);

    // restartService stops gracefully (SIGTERM), and a /readyz service is waited for on its port.
    const beta = lab.services()[1]!;
    const restarted = await lab.restartService("beta");
    expect(restarted.pid).not.toBe(beta.pid);
    expect(restarted.httpPort).toBe(beta.httpPort);
    expect(readText(beta.log)).toContain("graceful stop");
    expect(await httpStatus(beta.httpPort, "/readyz")).toBe(200);

    // The state file follows the new processes (what `lab:down` from another process reads).
    const recorded = readState(lab.stateFile);
    expect(recorded.services?.map((s) => s.pid)).toEqual([again.pid, restarted.pid]);
    expect(recorded.pids.map((p) => p.pid)).toEqual(expect.arrayContaining([again.pid, restarted.pid]));
    await expect(lab.killService("gamma")).rejects.toThrow(/no service 'gamma'.*alpha, beta/);
  });

  it("stops NB and starts it again with the same database and socket; restarts Redis and NATS in place", async () => {
    const l = lab!;
    await l.nbctl("ls-add", "control-test");
    const nbPid = readState(l.stateFile).pids.find((p) => p.name === "nb.out")!.pid;
    await l.stopServer("nb");
    expect(isAlive(nbPid)).toBe(false);
    const down = await l.nbctl("--timeout=1", "ls-list").catch((e: unknown) => e);
    expect(down).toBeInstanceOf(CommandError);
    await l.startServer("nb");
    expect(await l.nbctl("ls-list")).toContain("control-test");
    // Also on the TCP remote, same port.
    expect(await l.nbctl(`--db=${l.nbTcp}`, "ls-list")).toContain("control-test");
    const nbNow = readState(l.stateFile).pids.find((p) => p.name === "nb.out")!.pid;
    expect(nbNow).not.toBe(nbPid);
    // ovn-northd reconnected: the chassis catches up with a change made after the restart.
    await l.nbctl("--timeout=30", "--wait=hv", "sync");

    const redisPort = Number(new URL(l.env.REDIS_URL).port);
    expect(await redisCommand(redisPort, "SET control v1\r\n", /\+OK/)).toContain("+OK");
    await l.restartServer("redis");
    expect(await redisCommand(redisPort, "GET control\r\n", /\$2\r\nv1/)).toContain("v1");

    await l.stopServer("nats");
    await l.startServer("nats");
    const natsPort = Number(new URL(l.env.NATS_URL).port);
    const info = await redisCommand(natsPort, "", /^INFO .*\r\n/);
    expect(JSON.parse(info.slice(5))).toMatchObject({ port: natsPort, jetstream: true });
  });

  it("tears down every process, including the restarted ones", async () => {
    const l = lab!;
    const pids = readState(l.stateFile).pids.map((p) => p.pid);
    await l.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await listLeftovers(l.prefix)).toEqual(NO_LEFTOVERS);
  });
});
