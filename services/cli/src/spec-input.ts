/**
 * The mirror spec of `ovntap create`, from flags or from a file (`-f spec.yaml`, `-f -` for stdin),
 * and the local check against the contract before anything is sent. Problems come back as
 * UsageError naming the flag (`--key: target.key must be ≤ 4294967295 (GRE key is 32 bits)`) or the
 * file and field (`spec.yaml: target.key: …`).
 */
import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { validateSpec } from "@ovntap/contracts";
import type { ErrorIssue, MirrorSpec } from "@ovntap/contracts";
import { parseAllDocuments } from "yaml";
import { SPEC_FLAGS } from "./args.js";
import type { Values } from "./args.js";
import { UsageError } from "./errors.js";
import { parseInteger, parseLabels, parseSeconds, parseSelector } from "./values.js";

const VERB = "create";

/** Reads all of a stream (stdin) as UTF-8. */
export async function readAll(stream: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Parses spec text: JSON for `.json` files, YAML (which also reads JSON) otherwise. One document,
 * a mapping; anything else is a UsageError naming `where` and, for syntax errors, the line.
 */
export function parseSpecText(text: string, where: string, format?: "json" | "yaml"): unknown {
  if (text.trim() === "") throw new UsageError(`${where} is empty: it should hold one mirror spec`, VERB);
  let value: unknown;
  if (format === "json") {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${where} is not valid JSON: ${(err as Error).message}`, VERB, { cause: err });
    }
  } else {
    const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
    if (!Array.isArray(docs)) throw new UsageError(`${where} holds no YAML document`, VERB);
    const real = docs.filter((d) => d.contents !== null || d.errors.length > 0);
    if (real.length > 1) {
      throw new UsageError(
        `${where} holds ${real.length} YAML documents; give one mirror spec per file`,
        VERB,
      );
    }
    const [doc] = real;
    if (doc === undefined) throw new UsageError(`${where} is empty: it should hold one mirror spec`, VERB);
    const [problem] = doc.errors;
    if (problem) {
      const at = problem.linePos?.[0];
      const pos = at ? ` at line ${at.line}, column ${at.col}` : "";
      const first = problem.message.split("\n")[0] ?? problem.message;
      throw new UsageError(`${where} is not valid YAML${pos}: ${first}`, VERB, { cause: problem });
    }
    value = doc.toJS({ maxAliasCount: 100 });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(
      `${where} must hold a mirror spec object (name, namespace, sources, direction, target)`,
      VERB,
    );
  }
  return value;
}

export async function readSpecFile(
  file: string,
  cwd: string,
  stdin: AsyncIterable<Buffer | string> | undefined,
): Promise<{ raw: unknown; where: string }> {
  if (file === "-") {
    if (!stdin) throw new UsageError("-f -: there is no standard input to read", VERB);
    return { raw: parseSpecText(await readAll(stdin), "standard input"), where: "standard input" };
  }
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    throw new UsageError(`-f ${file}: cannot read it (${why})`, VERB, { cause: err });
  }
  const ext = extname(file).toLowerCase();
  return { raw: parseSpecText(text, file, ext === ".json" ? "json" : "yaml"), where: file };
}

/** `10.0.0.9`, or `pod:NAMESPACE/NAME` for a receiving pod resolved through ips.kubeovn.io. */
export function parseSink(flag: string, value: string): unknown {
  const m = /^pod:([^/]+)\/([^/]+)$/.exec(value.trim());
  if (m) return { pod: { namespace: m[1], name: m[2] } };
  if (value.startsWith("pod:"))
    throw new UsageError(`${flag}: ${JSON.stringify(value)} must be pod:NAMESPACE/NAME`, VERB);
  return value.trim();
}

/** `--ovs-node N --ovs-bridge B [--ovs-port P…] [--ovs-vlan V…]`, or undefined when none is given. */
function ovsSource(
  values: Values,
): { type: "ovs"; node: string; bridge: string; ports?: string[]; vlans?: number[] } | undefined {
  const ports = (values["ovs-port"] ?? []).flatMap((p) => p.split(",")).map((p) => p.trim());
  const vlans = (values["ovs-vlan"] ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => parseInteger("--ovs-vlan", v, VERB));
  const node = values["ovs-node"];
  const bridge = values["ovs-bridge"];
  if (node === undefined && bridge === undefined && ports.length === 0 && vlans.length === 0)
    return undefined;
  if (node === undefined || bridge === undefined) {
    throw new UsageError(
      `an OVS source needs ${node === undefined ? "--ovs-node NODE" : "--ovs-bridge BRIDGE"}: mirror ports or VLANs of one bridge on one node`,
      VERB,
    );
  }
  if (ports.length === 0 && vlans.length === 0) {
    throw new UsageError("an OVS source needs --ovs-port PORT or --ovs-vlan V (repeatable)", VERB);
  }
  return {
    type: "ovs",
    node,
    bridge,
    ...(ports.length ? { ports } : {}),
    ...(vlans.length ? { vlans } : {}),
  };
}

/** Builds the spec object from flags; the schema checks values, this checks presence and exclusivity. */
export function specFromFlags(values: Values, name: string, namespace: string): Record<string, unknown> {
  const sources: unknown[] = [];
  const pods = (values.pod ?? []).flatMap((p) => p.split(",")).map((p) => p.trim());
  if (pods.length) sources.push({ type: "pods", names: pods });
  if (values.port?.length) sources.push({ type: "ports", names: values.port });
  if (values.selector !== undefined)
    sources.push({ type: "selector", ...parseSelector("--selector", values.selector, VERB) });
  const ovs = ovsSource(values);
  if (ovs) sources.push(ovs);
  if (sources.length === 0) {
    throw new UsageError(
      "needs a source: --pod NAME (repeatable), --port LSP (repeatable), -l/--selector app=web, or --ovs-node NODE --ovs-bridge BR --ovs-port PORT / --ovs-vlan V",
      VERB,
    );
  }
  if (sources.length > 1) {
    throw new UsageError(
      "takes one kind of source: --pod, --port, --selector or --ovs-node/--ovs-bridge, not several",
      VERB,
    );
  }

  const targets: Record<string, unknown>[] = [];
  if (values["gre-sink"] !== undefined) {
    targets.push({ type: "gre", sink: parseSink("--gre-sink", values["gre-sink"]) });
  }
  // `--sink-pod NS/NAME`: GRE to a receiving pod, as the Kube-OVN guide does it.
  if (values["sink-pod"] !== undefined) {
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(values["sink-pod"].trim());
    if (!m)
      throw new UsageError(
        `--sink-pod must be NAMESPACE/NAME (got ${JSON.stringify(values["sink-pod"])})`,
        VERB,
      );
    targets.push({ type: "gre", sink: { pod: { namespace: m[1], name: m[2] } } });
  }
  if (values["erspan-sink"] !== undefined) {
    targets.push({ type: "erspan", sink: parseSink("--erspan-sink", values["erspan-sink"]) });
  }
  if (values.collector) targets.push({ type: "collector" });
  for (const flag of ["output-port", "output-vlan"] as const) {
    const v = values[flag];
    if (v === undefined) continue;
    if (!ovs) {
      throw new UsageError(
        `--${flag} outputs on an OVS bridge: it goes with --ovs-node, --ovs-bridge and --ovs-port/--ovs-vlan`,
        VERB,
      );
    }
    const at = { node: ovs.node, bridge: ovs.bridge };
    targets.push(
      flag === "output-port"
        ? { type: "ovsPort", ...at, port: v.trim() }
        : { type: "ovsVlan", ...at, vlan: parseInteger("--output-vlan", v, VERB) },
    );
  }
  if (targets.length !== 1) {
    throw new UsageError(
      targets.length === 0
        ? `needs a target: --gre-sink IP, --sink-pod NS/NAME, --erspan-sink IP${ovs ? ", --collector, --output-port PORT or --output-vlan V" : " or --collector"}`
        : `takes one target: --gre-sink, --sink-pod, --erspan-sink${ovs ? ", --collector, --output-port or --output-vlan" : " or --collector"}, not several`,
      VERB,
    );
  }
  const [target = {}] = targets;
  if (values.key !== undefined) {
    if (target.type !== "gre")
      throw new UsageError("--key goes with --gre-sink (ERSPAN uses --session-id)", VERB);
    target.key = parseInteger("--key", values.key, VERB);
  }
  if (values["session-id"] !== undefined) {
    if (target.type !== "erspan") throw new UsageError("--session-id goes with --erspan-sink", VERB);
    target.sessionId = parseInteger("--session-id", values["session-id"], VERB);
  }
  if (values["erspan-version"] !== undefined) {
    if (target.type !== "erspan") throw new UsageError("--erspan-version goes with --erspan-sink", VERB);
    target.version = parseInteger("--erspan-version", values["erspan-version"], VERB);
  }
  if (values.provider !== undefined) {
    const sink = target.sink as { pod?: Record<string, unknown> } | undefined;
    if (typeof sink !== "object" || sink?.pod === undefined)
      throw new UsageError(
        "--provider goes with a pod sink: --sink-pod NS/NAME or --gre-sink/--erspan-sink pod:NS/NAME",
        VERB,
      );
    sink.pod.provider = values.provider.trim();
  }
  const receiver = parseReceiver(values);
  if (receiver !== undefined) {
    if (target.type !== "gre" && target.type !== "erspan")
      throw new UsageError("--receiver-link goes with --gre-sink or --erspan-sink", VERB);
    target.receiver = receiver;
  }
  if (values.direction === undefined) throw new UsageError("needs --direction ingress, egress or both", VERB);

  const spec: Record<string, unknown> = {
    name,
    namespace,
    sources: sources[0],
    direction: values.direction,
    target,
  };
  if (values.ttl !== undefined) spec.ttlSeconds = parseSeconds("--ttl", values.ttl, VERB);
  if (values.snaplen !== undefined) spec.snaplen = parseInteger("--snaplen", values.snaplen, VERB);
  if (values.label?.length) spec.labels = parseLabels("--label", values.label, VERB);
  return spec;
}

/**
 * `--receiver-link NAME (--receiver-netns NETNS | --receiver-pod NS/NAME) [--receiver-dev DEV]`:
 * the kernel link at the sink the node agent makes, owns and removes; undefined when none is given.
 */
function parseReceiver(values: Values): Record<string, unknown> | undefined {
  const link = values["receiver-link"];
  const netns = values["receiver-netns"];
  const pod = values["receiver-pod"];
  const dev = values["receiver-dev"];
  if (link === undefined) {
    const stray = (["receiver-netns", "receiver-pod", "receiver-dev"] as const).find(
      (f) => values[f] !== undefined,
    );
    if (stray !== undefined) throw new UsageError(`--${stray} goes with --receiver-link NAME`, VERB);
    return undefined;
  }
  if ((netns === undefined) === (pod === undefined))
    throw new UsageError(
      "--receiver-link needs one of --receiver-netns NETNS or --receiver-pod NAMESPACE/NAME",
      VERB,
    );
  const receiver: Record<string, unknown> = { link: link.trim() };
  if (netns !== undefined) receiver.netns = netns.trim();
  if (pod !== undefined) {
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(pod.trim());
    if (!m) throw new UsageError(`--receiver-pod must be NAMESPACE/NAME (got ${JSON.stringify(pod)})`, VERB);
    receiver.pod = { namespace: m[1], name: m[2] };
  }
  if (dev !== undefined) receiver.dev = dev.trim();
  return receiver;
}

/** With `-f`, `--name`/`--namespace` may fill in what the file leaves out, but not contradict it. */
export function mergeFileSpec(
  raw: unknown,
  where: string,
  values: Values,
  given: ReadonlySet<string>,
  name: string | undefined,
  defaultNamespace: string,
): Record<string, unknown> {
  const flag = SPEC_FLAGS.find((f) => given.has(f));
  if (flag !== undefined) {
    throw new UsageError(
      `--${flag} cannot be combined with -f: the file is the whole spec (edit it instead)`,
      VERB,
    );
  }
  const spec = { ...(raw as Record<string, unknown>) };
  if (name !== undefined) {
    if (spec.name !== undefined && spec.name !== name) {
      throw new UsageError(
        `the name in ${where} (${JSON.stringify(spec.name)}) differs from the one given (${name})`,
        VERB,
      );
    }
    spec.name = name;
  }
  if (values.namespace !== undefined) {
    if (spec.namespace !== undefined && spec.namespace !== values.namespace) {
      throw new UsageError(
        `the namespace in ${where} (${JSON.stringify(spec.namespace)}) differs from --namespace ${values.namespace}`,
        VERB,
      );
    }
    spec.namespace = values.namespace;
  } else if (spec.namespace === undefined) {
    spec.namespace = defaultNamespace;
  }
  return spec;
}

/** Maps an issue path (relative to the spec or the request) to the flag that set it. */
export function flagForPath(path: string, spec?: Record<string, unknown>): string | undefined {
  const p = path.replace(/^spec\./, "");
  const sourceType = (spec?.sources as { type?: string } | undefined)?.type;
  const targetType = (spec?.target as { type?: string } | undefined)?.type;
  const rules: [RegExp, string | undefined][] = [
    [/^name$/, "--name"],
    [/^namespace$/, "--namespace"],
    [/^sources\.names/, sourceType === "ports" ? "--port" : "--pod"],
    [/^sources\.node$/, "--ovs-node"],
    [/^sources\.bridge$/, "--ovs-bridge"],
    [/^sources\.ports/, "--ovs-port"],
    [/^sources\.vlans/, "--ovs-vlan"],
    [/^sources/, sourceType === "ovs" ? "--ovs-node" : "--selector"],
    [/^direction$/, "--direction"],
    [/^target\.sink\.pod\.provider$/, "--provider"],
    [/^target\.sink/, targetType === "erspan" ? "--erspan-sink" : "--gre-sink"],
    [/^target\.node$/, "--ovs-node"],
    [/^target\.bridge$/, "--ovs-bridge"],
    [/^target\.port$/, "--output-port"],
    [/^target\.vlan$/, "--output-vlan"],
    [/^target\.receiver\.link$/, "--receiver-link"],
    [/^target\.receiver\.netns$/, "--receiver-netns"],
    [/^target\.receiver\.pod/, "--receiver-pod"],
    [/^target\.receiver\.dev$/, "--receiver-dev"],
    [/^target\.key$/, "--key"],
    [/^target\.sessionId$/, "--session-id"],
    [/^target\.version$/, "--erspan-version"],
    [/^ttlSeconds$/, "--ttl"],
    [/^snaplen$/, "--snaplen"],
    [/^labels/, "--label"],
    [/^requestId$/, "--request-id"],
    [/^principal$/, "--principal"],
    [/^selector/, "--selector"],
  ];
  return rules.find(([re]) => re.test(p))?.[1];
}

/** One line per issue: `--key: target.key must be …` for flags, `spec.yaml: target.key: must be …` for files. */
export function describeIssues(
  issues: readonly ErrorIssue[],
  from: { file: string } | { flags: Record<string, unknown> | undefined },
): string {
  return issues
    .map((i) => {
      const path = i.path.replace(/^spec\./, "");
      if ("file" in from && !/^(requestId|principal)$/.test(path))
        return `${from.file}: ${path || "(spec)"}: ${i.message}`;
      const flag = flagForPath(i.path, "flags" in from ? from.flags : undefined);
      return flag ? `${flag}: ${path} ${i.message}` : `${path || "(request)"}: ${i.message}`;
    })
    .join("\n");
}

/** Validates a spec; on failure a UsageError listing every issue. */
export function checkSpec(
  raw: Record<string, unknown>,
  from: { file: string } | { flags: Record<string, unknown> },
): MirrorSpec {
  const r = validateSpec(raw);
  if (r.ok) return r.value;
  throw new UsageError(`invalid mirror spec:\n${describeIssues(r.error.issues, from)}`, VERB);
}
