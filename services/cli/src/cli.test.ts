/**
 * The command line without a server: help, version, and every usage error, each of which must
 * exit 2 naming the flag or field, and must do so before connecting (NATS_URL points at a closed
 * port, so a connection attempt would exit 3 instead).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCommandLine, VERB_FLAGS, VERBS } from "./args.js";
import { cliVersion, runCli } from "./cli.js";
import { EXIT } from "./errors.js";
import { capture } from "./testing/fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-usage-"));
  writeFileSync(
    join(dir, "bad.yaml"),
    "name: web\nnamespace: shop\nsources: {type: pods, names: [web-0]}\ndirection: sideways\ntarget: {type: gre, sink: 10.0.0.9, key: -1}\n",
  );
  writeFileSync(
    join(dir, "ok.yaml"),
    "name: web\nnamespace: shop\nsources: {type: pods, names: [web-0]}\ndirection: both\ntarget: {type: gre, sink: 10.0.0.9}\n",
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[], stdin?: string) {
  const c = capture();
  const code = await runCli(argv, {
    ...c.io,
    env: { NATS_URL: "nats://127.0.0.1:1", OVNTAP_PRINCIPAL: "tester" },
    cwd: dir,
    ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {}),
  });
  return { code, out: c.out(), err: c.err() };
}

const CREATE = [
  "create",
  "web",
  "-n",
  "shop",
  "--pod",
  "web-0",
  "--direction",
  "both",
  "--gre-sink",
  "10.0.0.9",
];

describe("help and version", () => {
  it("prints the overview for no arguments, --help, -h and help", async () => {
    for (const argv of [[], ["--help"], ["-h"], ["help"]]) {
      const r = await run(argv);
      expect(r.code).toBe(EXIT.OK);
      expect(r.out).toContain("Usage:\n  ovntap <command> [flags]");
      expect(r.out).toContain("Exit codes:");
    }
  });

  it.each(VERBS)("'%s --help' and 'help %s' show its flags and examples", async (verb) => {
    const a = await run([verb, "--help"]);
    const b = await run(["help", verb]);
    expect(a.code).toBe(EXIT.OK);
    expect(a.out).toBe(b.out);
    expect(a.out).toContain(`ovntap ${verb}`);
    expect(a.out).toContain("Examples:");
    // The offline verbs (decode, decap) take no connection flags.
    if (VERB_FLAGS[verb].includes("nats")) expect(a.out).toContain("--nats URL");
  });

  it("help wins over missing flags", async () => {
    expect((await run(["create", "--help", "--bogus-is-still-refused"])).code).toBe(EXIT.USAGE);
    expect((await run(["create", "--pod", "x", "-h"])).code).toBe(EXIT.OK);
  });

  it("--version prints the package version", async () => {
    const r = await run(["--version"]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe(`ovntap ${cliVersion()}\n`);
    expect(cliVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("parseCommandLine", () => {
  it("finds the verb, positionals and the flags given", () => {
    const cmd = parseCommandLine(["-n", "shop", "get", "web", "-o", "yaml"]);
    expect(cmd).toMatchObject({
      kind: "verb",
      verb: "get",
      positionals: ["web"],
      values: { namespace: "shop", output: "yaml" },
    });
    expect(cmd.kind === "verb" && [...cmd.given].sort()).toEqual(["namespace", "output"]);
  });
});

describe("usage errors exit 2 before connecting, naming the flag", () => {
  it.each([
    [["frobnicate"], /unknown command "frobnicate"/],
    [["--nats", "nats://x:1"], /missing a command/],
    [["help", "nope"], /unknown command "nope"/],
    [["create", "--bogus"], /unknown flag --bogus/],
    [["get", "web", "--key", "7"], /unknown flag --key for 'ovntap get'/],
    [["events", "--principal", "x"], /unknown flag --principal for 'ovntap events'/],
    [["get", "web", "-n"], /-n, --namespace needs a value/],
    [["create", "--wait=yes"], /--wait takes no value/],
    [["create", "web", "--key", "-1"], /--key: the value starts with '-'; write it as --key=VALUE/],
    [["get"], /needs the mirror's NAME/],
    [["get", "a", "b"], /takes one NAME/],
    [["get", "a", "--name", "b"], /the name is given twice/],
    [["get", "Web", "-n", "shop"], /--name: name must be a DNS-1123 label/],
    [["get", "web", "-n", "bad_ns"], /--namespace: namespace must be a DNS-1123 label/],
    [["get", "web", "-o", "xml"], /-o\/--output: "xml" is not one of table, json, yaml/],
    [["get", "web", "--request-timeout", "soon"], /--request-timeout: "soon" is not a duration/],
    [["get", "web", "--request-timeout", "0"], /--request-timeout: must be more than 0/],
    [["get", "web", "--request-id", "has space"], /--request-id: requestId must use only letters/],
    [
      ["get", "web", "--principal", "bad\u0007bell"],
      /--principal: principal must not contain control characters/,
    ],
    [["list", "extra"], /takes no arguments/],
    [["list", "-l", "a in b"], /--selector: "a in b" is not a selector term/],
    [["list", "-l", "Bad Key=x"], /--selector/],
    [["delete"], /needs the mirror's NAME/],
    [["delete", "web", "--timeout", "5s"], /--timeout goes with --wait/],
    [["delete", "web", "--wait", "--timeout", "0"], /--timeout: must be more than 0/],
    [["extend", "web"], /needs --ttl/],
    [
      ["extend", "web", "--ttl", "30"],
      /--ttl: ttlSeconds must be ≥ 60 \(a mirror lives 1 minute to 7 days\)/,
    ],
    [["extend", "web", "--ttl", "8d"], /--ttl: ttlSeconds must be ≤ 604800/],
    [["events", "--since", "yesterday"], /--since: "yesterday" is not a duration/],
    [["events", "--since", "2025-13-45T00:00:00Z"], /--since: .* is not an RFC 3339 time/],
    [["events", "-n", "Bad"], /--namespace: must be a DNS-1123 label/],
    [["events", "--mirror", "a_b"], /--mirror: must be a DNS-1123 label/],
    [["events", "a", "--mirror", "b"], /the mirror is given twice/],
    [["events", "-o", "table2"], /-o\/--output: "table2" is not one of text, json, yaml/],
    // create: presence and exclusivity
    [["create", "-n", "shop", "--pod", "p", "--direction", "both", "--collector"], /needs the mirror's NAME/],
    [["create", "web", "--direction", "both", "--collector"], /needs a source: --pod NAME/],
    [
      ["create", "web", "--pod", "a", "--port", "b", "--direction", "both", "--collector"],
      /takes one kind of source/,
    ],
    [["create", "web", "--pod", "a", "--collector"], /needs --direction ingress, egress or both/],
    [
      ["create", "web", "--pod", "a", "--direction", "both"],
      /needs a target: --gre-sink IP, --sink-pod NS\/NAME, --erspan-sink IP or --collector/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--collector", "--gre-sink", "10.0.0.9"],
      /takes one target/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--erspan-sink", "10.0.0.9", "--key", "1"],
      /--key goes with --gre-sink/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--gre-sink", "10.0.0.9", "--session-id", "1"],
      /--session-id goes with --erspan-sink/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--collector", "--erspan-version", "2"],
      /--erspan-version goes with --erspan-sink/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--gre-sink", "pod:x"],
      /--gre-sink: "pod:x" must be pod:NAMESPACE\/NAME/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--gre-sink", "10.0.0.9", "--ttl", "1x"],
      /--ttl: "1x" is not a duration/,
    ],
    [
      ["create", "web", "--pod", "a", "--direction", "both", "--gre-sink", "10.0.0.9", "--label", "novalue"],
      /--label: "novalue" must be key=value/,
    ],
    // create: values checked by the contract's schema, reported by flag
    [
      [...CREATE.slice(0, 7), "sideways", ...CREATE.slice(8)],
      /--direction: direction must be "ingress", "egress" or "both"/,
    ],
    [[...CREATE, "--key", "4294967296"], /--key: target.key must be ≤ 4294967295 \(GRE key is 32 bits\)/],
    [[...CREATE, "--key", "abc"], /--key: "abc" is not an integer/],
    [
      [...CREATE.slice(0, 8), "--erspan-sink", "10.0.0.9", "--session-id", "1024"],
      /--session-id: target.sessionId must be ≤ 1023 \(ERSPAN session id is 10 bits\)/,
    ],
    [
      [...CREATE.slice(0, 8), "--erspan-sink", "10.0.0.9", "--erspan-version", "2"],
      /--erspan-version: target.version must be 1 with pods, selector or ports sources/,
    ],
    [
      [...CREATE.slice(0, 8), "--gre-sink", "127.0.0.1"],
      /--gre-sink: target.sink "127.0.0.1" is a loopback address/,
    ],
    [[...CREATE.slice(0, 8), "--gre-sink", "sink.example"], /--gre-sink: target.sink/],
    [[...CREATE, "--ttl", "59"], /--ttl: ttlSeconds must be ≥ 60/],
    [
      [...CREATE, "--snaplen", "13"],
      /--snaplen: snaplen must be ≥ 14 \(OVS Mirror.snaplen takes 14..65535\)/,
    ],
    [[...CREATE, "--label", "Bad Key=v"], /--label: labels/],
    [[...CREATE, "--label", "app=has space"], /--label: labels.app must be empty or letters/],
    [["create", "UPPER", ...CREATE.slice(2)], /--name: name must be a DNS-1123 label/],
    [
      [...CREATE.slice(0, 2), "-n", "kube_system", ...CREATE.slice(4)],
      /--namespace: namespace must be a DNS-1123 label/,
    ],
    [
      ["create", "web", "-n", "shop", "--pod", "Web_0", "--direction", "both", "--collector"],
      /--pod: sources.names\[0\] must be a DNS-1123 subdomain/,
    ],
    [
      ["create", "web", "-n", "shop", "--pod", "a,a", "--direction", "both", "--collector"],
      /--pod: sources.names\[1\] duplicates "a"/,
    ],
    [["create", "web", "-n", "shop", "-l", "app in ()x", "--direction", "both", "--collector"], /--selector/],
    [[...CREATE, "--wait", "--timeout", "never"], /--timeout: "never" is not a duration/],
    // -f
    [["create", "-f", "missing.yaml"], /-f missing.yaml: cannot read it \(no such file\)/],
    [["create", "-f", "ok.yaml", "--pod", "x"], /--pod cannot be combined with -f/],
    [
      ["create", "-f", "ok.yaml", "-n", "other"],
      /the namespace in ok.yaml \("shop"\) differs from --namespace other/,
    ],
    [["create", "-f", "ok.yaml", "--request-id", "a b"], /--request-id: requestId must use only/],
  ])("%j", async (argv, message) => {
    const r = await run(argv);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/Run 'ovntap( \w+)? --help' for usage\.\n$/);
  });

  it("lists every problem of a spec file with its path", async () => {
    const r = await run(["create", "-f", "bad.yaml"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toContain('bad.yaml: direction: must be "ingress", "egress" or "both"\n');
    expect(r.err).toContain("bad.yaml: target.key: must be ≥ 0 (GRE key is 32 bits)\n");
  });

  it("reads -f - from standard input and checks it", async () => {
    const r = await run(["create", "-f", "-"], "name: web\nnamespace: shop\n");
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toContain("standard input: sources: is required");
    expect(r.err).toContain("standard input: target: is required");
  });

  it("a valid command gets as far as connecting (exit 3, URL named)", async () => {
    const r = await run(CREATE);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.err).toMatch(/^ovntap: cannot reach NATS at nats:\/\/127\.0\.0\.1:1 \(from NATS_URL\)/);
  });
});
