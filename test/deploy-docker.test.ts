/**
 * deploy/docker, checked without a Docker engine: the Dockerfiles parse into the stages they
 * promise, the image runs as an unprivileged user with one entrypoint that knows every service,
 * what they copy exists, and the build context leaves out what must not go in.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderKustomization } from "../deploy/k8s/tools/kustomize.js";
import { podTemplate } from "../deploy/k8s/tools/validate.js";
import { servicePackages } from "../deploy/k8s/tools/service-env.js";

const root = join(import.meta.dirname, "..");
const dockerDir = join(root, "deploy", "docker");

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/**
 * Dockerfile syntax (docs.docker.com "Dockerfile reference"): parser directives and comments
 * start with #, a trailing backslash continues a line, the keyword is case-insensitive.
 */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === "" && (line.trim() === "" || line.trimStart().startsWith("#"))) return;
    if (pending !== "" && line.trimStart().startsWith("#")) return; // comments inside a continuation
    if (pending === "") start = i + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = "";
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    if (!m) throw new Error(`line ${start}: cannot parse ${full}`);
    out.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start });
  });
  if (pending) throw new Error("the Dockerfile ends inside a continued line");
  return out;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function stages(instructions: Instruction[]): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const out: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: FROM ${ins.args}`);
      const from = (m[1] as string).replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_, a: string, b: string) => args[a ?? b] ?? "",
      );
      out.push({ from, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (out.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`line ${ins.line}: only ARG may come before FROM`);
      const [k, v = ""] = ins.args.split("=", 2);
      args[k as string] = v;
    } else out[out.length - 1]?.instructions.push(ins);
  }
  return { args, stages: out };
}

const dockerfile = stages(parseDockerfile(readFileSync(join(dockerDir, "Dockerfile"), "utf8")));
const final = dockerfile.stages[dockerfile.stages.length - 1] as Stage;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

/** The programs the entrypoint runs: the names in its `case` pattern that runs services/<name>. */
function entrypointPrograms(): string[] {
  const text = readFileSync(join(dockerDir, "entrypoint.sh"), "utf8");
  const pattern = /^\s*([a-z0-9| -]+)\)\s*\n\s*exec node "\/app\/services\/\$service\/dist\/main\.js"/m.exec(
    text,
  );
  if (!pattern) throw new Error("entrypoint.sh has no case running /app/services/$service/dist/main.js");
  return (pattern[1] as string).split("|").map((s) => s.trim());
}

describe("deploy/docker/Dockerfile", () => {
  it("builds in a node:20-bookworm-slim stage and runs in another", () => {
    expect(dockerfile.stages.map((s) => [s.name, s.from])).toEqual([
      ["build", "node:20-bookworm-slim"],
      ["runtime", "node:20-bookworm-slim"],
    ]);
    const build = dockerfile.stages[0] as Stage;
    const runs = all(build, "RUN")
      .map((r) => r.args)
      .join("\n");
    expect(runs).toContain("npm install --no-save");
    expect(runs).toContain("turbo run build");
    expect(runs).toContain("npm prune --omit=dev");
    expect(all(final, "COPY").map((c) => c.args)).toContain("--from=build /out /app");
  });

  it("runs as the unprivileged user the Kubernetes manifests name, with an exec-form ENTRYPOINT", () => {
    const [user, ...more] = all(final, "USER");
    expect(more).toEqual([]);
    expect(user?.args).toBe("10001:10001");
    const k8s = renderKustomization(join(root, "deploy", "k8s", "base"));
    const uids = new Set(
      k8s
        .map((o) => podTemplate(o)?.spec as { securityContext?: { runAsUser?: number } } | undefined)
        .map((s) => s?.securityContext?.runAsUser)
        .filter((u) => u !== undefined),
    );
    expect(uids).toEqual(new Set([10001]));

    const [entrypoint] = all(final, "ENTRYPOINT");
    const argv = JSON.parse(entrypoint?.args ?? "null") as string[];
    expect(argv).toEqual(["/usr/local/bin/ovntap-entrypoint"]);
    expect(all(final, "COPY").map((c) => c.args)).toContain(
      "deploy/docker/entrypoint.sh /usr/local/bin/ovntap-entrypoint",
    );
    const [health] = all(final, "HEALTHCHECK");
    expect(health?.args).toContain("/healthz");
  });

  it("has an entrypoint for every service, and every program it names exists", () => {
    const programs = entrypointPrograms();
    for (const p of servicePackages(root).filter((x) => x.service))
      expect(programs, `services/${p.name}`).toContain(p.name);
    for (const p of programs) expect(existsSync(join(root, "services", p, "src", "main.ts")), p).toBe(true);
    const script = readFileSync(join(dockerDir, "entrypoint.sh"), "utf8");
    expect(script).toContain("exec node /app/services/cli/bin/ovntap.js");
    expect(existsSync(join(root, "services", "cli", "bin", "ovntap.js"))).toBe(true);
  });

  it("the entrypoint refuses to guess: no program named, or an unknown one, exits 64 with the list", () => {
    const script = join(dockerDir, "entrypoint.sh");
    expect(spawnSync("sh", ["-n", script]).status).toBe(0);
    const env = { PATH: process.env.PATH ?? "" };
    for (const args of [[], ["nonsense"]]) {
      const r = spawnSync("sh", [script, ...args], { encoding: "utf8", env });
      expect(r.status, args.join(" ")).toBe(64);
      expect(r.stderr).toContain(
        "intake, ovn-applier, capture-exporter, node-agent, k8s-controller, console, or cli",
      );
    }
  });

  it("copies only what exists, and its context leaves out dependencies and build output", () => {
    for (const stage of dockerfile.stages) {
      for (const c of all(stage, "COPY")) {
        if (c.args.startsWith("--from=")) continue;
        const [src] = c.args.split(/\s+/);
        expect(existsSync(join(root, src as string)), c.args).toBe(true);
      }
    }
    const ignore = readFileSync(join(dockerDir, "Dockerfile.dockerignore"), "utf8").split("\n");
    expect(ignore).toEqual(expect.arrayContaining(["**/node_modules", "**/dist", ".git", ".lab"]));
  });
});

describe("deploy/docker/ovn.Dockerfile", () => {
  it("installs the lab's Debian packages and runs ovn-lab, with a context of that script alone", () => {
    const ovn = stages(parseDockerfile(readFileSync(join(dockerDir, "ovn.Dockerfile"), "utf8")));
    expect(ovn.stages.map((s) => s.from)).toEqual(["debian:bookworm-slim"]);
    const stage = ovn.stages[0] as Stage;
    const runs = all(stage, "RUN")
      .map((r) => r.args)
      .join(" ");
    for (const pkg of ["openvswitch-switch", "ovn-central", "ovn-host", "iproute2", "ethtool"])
      expect(runs).toContain(pkg);
    expect(JSON.parse(all(stage, "ENTRYPOINT")[0]?.args ?? "null")).toEqual(["/usr/local/bin/ovn-lab"]);
    expect(readFileSync(join(dockerDir, "ovn.Dockerfile.dockerignore"), "utf8")).toMatch(
      /^\*\n!deploy\/docker\/ovn-lab\.sh$/m,
    );
  });
});

describe("the Dockerfile parser", () => {
  it("joins continued lines, skips comments, and refuses instructions before FROM", () => {
    const parsed = parseDockerfile(
      "# syntax=docker/dockerfile:1\nARG X=1\nFROM a:${X} AS b\nRUN one \\\n  # note\n  two\n",
    );
    expect(parsed.map((i) => [i.keyword, i.args])).toEqual([
      ["ARG", "X=1"],
      ["FROM", "a:${X} AS b"],
      ["RUN", "one    two"],
    ]);
    expect(stages(parsed).stages).toEqual([{ from: "a:1", name: "b", instructions: [parsed[2]] }]);
    expect(() => stages(parseDockerfile("RUN x\nFROM y\n"))).toThrow(/only ARG/);
  });
});
