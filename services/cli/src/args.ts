/**
 * The command line: one table of flags for every verb, parsed with `util.parseArgs`, then checked
 * against the flags the verb takes, so `ovntap get web --key 7` is refused naming `--key`.
 *
 *   const cmd = parseCommandLine(["get", "web", "-n", "shop", "-o", "yaml"]);
 *   // { verb: "get", positionals: ["web"], values: { namespace: "shop", output: "yaml" }, given: Set {...} }
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.js";

export const OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  // Connection and request
  nats: { type: "string" },
  "request-timeout": { type: "string" },
  principal: { type: "string" },
  "request-id": { type: "string" },
  // Which mirror
  namespace: { type: "string", short: "n" },
  name: { type: "string" },
  mirror: { type: "string" },
  // Spec
  file: { type: "string", short: "f" },
  pod: { type: "string", multiple: true },
  port: { type: "string", multiple: true },
  selector: { type: "string", short: "l" },
  "ovs-node": { type: "string" },
  "ovs-bridge": { type: "string" },
  "ovs-port": { type: "string", multiple: true },
  "ovs-vlan": { type: "string", multiple: true },
  direction: { type: "string" },
  "gre-sink": { type: "string" },
  key: { type: "string" },
  "erspan-sink": { type: "string" },
  "sink-pod": { type: "string" },
  provider: { type: "string" },
  "session-id": { type: "string" },
  "erspan-version": { type: "string" },
  collector: { type: "boolean" },
  "output-port": { type: "string" },
  "output-vlan": { type: "string" },
  "receiver-link": { type: "string" },
  "receiver-netns": { type: "string" },
  "receiver-pod": { type: "string" },
  "receiver-dev": { type: "string" },
  ttl: { type: "string" },
  snaplen: { type: "string" },
  label: { type: "string", multiple: true },
  // Output and waiting
  output: { type: "string", short: "o" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
  follow: { type: "boolean" },
  since: { type: "string" },
  // Capture
  write: { type: "string", short: "w" },
  count: { type: "string" },
  duration: { type: "string" },
  filter: { type: "string" },
  pcapng: { type: "boolean" },
  // Capture files (decode, decap)
  json: { type: "boolean" },
  session: { type: "string" },
} as const;

export type OptionName = keyof typeof OPTIONS;

export const VERBS = [
  "create",
  "delete",
  "get",
  "list",
  "events",
  "extend",
  "capture",
  "decode",
  "decap",
] as const;
export type Verb = (typeof VERBS)[number];

const REQUEST_FLAGS = ["nats", "request-timeout", "principal", "request-id", "help"] as const;
/** Flags that describe the spec, so `create -f` refuses them. */
export const SPEC_FLAGS = [
  "pod",
  "port",
  "selector",
  "ovs-node",
  "ovs-bridge",
  "ovs-port",
  "ovs-vlan",
  "direction",
  "gre-sink",
  "key",
  "erspan-sink",
  "sink-pod",
  "provider",
  "session-id",
  "erspan-version",
  "collector",
  "output-port",
  "output-vlan",
  "receiver-link",
  "receiver-netns",
  "receiver-pod",
  "receiver-dev",
  "ttl",
  "snaplen",
  "label",
] as const;

/** Which flags each verb takes. */
export const VERB_FLAGS: Readonly<Record<Verb, readonly OptionName[]>> = {
  create: [...REQUEST_FLAGS, "namespace", "name", "file", ...SPEC_FLAGS, "wait", "timeout", "output"],
  delete: [...REQUEST_FLAGS, "namespace", "name", "wait", "timeout", "output"],
  get: [...REQUEST_FLAGS, "namespace", "name", "output"],
  list: [...REQUEST_FLAGS, "namespace", "selector", "output"],
  extend: [...REQUEST_FLAGS, "namespace", "name", "ttl", "output"],
  events: ["nats", "request-timeout", "help", "namespace", "mirror", "follow", "since", "output"],
  capture: [
    "nats",
    "request-timeout",
    "principal",
    "help",
    "namespace",
    "write",
    "count",
    "duration",
    "filter",
    "pcapng",
  ],
  decode: ["help", "json"],
  decap: ["help", "write", "key", "session", "pcapng"],
};

/** Flags' values as parseArgs returns them. */
export interface Values {
  help?: boolean;
  version?: boolean;
  nats?: string;
  "request-timeout"?: string;
  principal?: string;
  "request-id"?: string;
  namespace?: string;
  name?: string;
  mirror?: string;
  file?: string;
  pod?: string[];
  port?: string[];
  selector?: string;
  "ovs-node"?: string;
  "ovs-bridge"?: string;
  "ovs-port"?: string[];
  "ovs-vlan"?: string[];
  direction?: string;
  "gre-sink"?: string;
  key?: string;
  "erspan-sink"?: string;
  "sink-pod"?: string;
  provider?: string;
  "session-id"?: string;
  "erspan-version"?: string;
  collector?: boolean;
  "output-port"?: string;
  "output-vlan"?: string;
  "receiver-link"?: string;
  "receiver-netns"?: string;
  "receiver-pod"?: string;
  "receiver-dev"?: string;
  ttl?: string;
  snaplen?: string;
  label?: string[];
  output?: string;
  wait?: boolean;
  timeout?: string;
  follow?: boolean;
  since?: string;
  write?: string;
  count?: string;
  duration?: string;
  filter?: string;
  pcapng?: boolean;
  json?: boolean;
  session?: string;
}

export type CommandLine =
  | { kind: "help"; verb?: Verb }
  | { kind: "version" }
  | { kind: "verb"; verb: Verb; values: Values; positionals: string[]; given: ReadonlySet<OptionName> };

function isVerb(s: string | undefined): s is Verb {
  return (VERBS as readonly string[]).includes(s ?? "");
}

/** A best guess at the verb before parsing succeeded, to point at its help. */
function guessVerb(argv: readonly string[]): Verb | undefined {
  return argv.find(isVerb);
}

function rewrite(err: unknown, argv: readonly string[]): UsageError {
  const verb = guessVerb(argv);
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
    return new UsageError(`unknown flag ${flag}`, verb, { cause: err });
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    // "Option '--ttl <value>' argument missing" / "Option '--wait' does not take an argument"
    const m = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(message);
    if (m) return new UsageError(`${m[1] ?? "flag"} needs a value`, verb, { cause: err });
    const m2 = /^Option '([^']+)' does not take an argument/.exec(message);
    if (m2) return new UsageError(`${m2[1] ?? "flag"} takes no value`, verb, { cause: err });
    const m3 = /^Option '([^']+)' argument is ambiguous/.exec(message);
    if (m3) {
      return new UsageError(
        `${m3[1] ?? "flag"}: the value starts with '-'; write it as ${m3[1] ?? "--flag"}=VALUE`,
        verb,
        { cause: err },
      );
    }
  }
  return new UsageError(message, verb, { cause: err });
}

export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    throw rewrite(err, argv);
  }
  const values: Values = parsed.values;
  const [first, ...positionals] = parsed.positionals;

  if (values.version) return { kind: "version" };
  if (first === undefined) {
    if (values.help || argv.length === 0) return { kind: "help" };
    throw new UsageError(`missing a command (${VERBS.join(", ")})`);
  }
  if (first === "help") {
    const topic = positionals[0];
    if (topic === undefined) return { kind: "help" };
    if (!isVerb(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
    return { kind: "help", verb: topic };
  }
  if (first === "version") return { kind: "version" };
  if (!isVerb(first)) {
    throw new UsageError(`unknown command ${JSON.stringify(first)}; the commands are ${VERBS.join(", ")}`);
  }
  const verb = first;
  const given = new Set<OptionName>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    const name = token.name;
    if (!VERB_FLAGS[verb].includes(name)) {
      throw new UsageError(`unknown flag ${token.rawName} for 'ovntap ${verb}'`, verb);
    }
    given.add(name);
  }
  if (values.help) return { kind: "help", verb };
  return { kind: "verb", verb, values, positionals, given };
}

/** The one name a verb acts on: a positional or `--name`, not both, not two. */
export function oneName(verb: Verb, values: Values, positionals: readonly string[], what = "NAME"): string {
  if (positionals.length > 1) {
    throw new UsageError(
      `takes one ${what}, got ${positionals.map((p) => JSON.stringify(p)).join(" ")}`,
      verb,
    );
  }
  const [positional] = positionals;
  if (positional !== undefined && values.name !== undefined && positional !== values.name) {
    throw new UsageError(`the name is given twice (${positional} and --name ${values.name})`, verb);
  }
  const name = positional ?? values.name;
  if (name === undefined) throw new UsageError(`needs the mirror's ${what}`, verb);
  return name;
}

export function noPositionals(verb: Verb, positionals: readonly string[]): void {
  if (positionals.length > 0) {
    throw new UsageError(
      `takes no arguments, got ${positionals.map((p) => JSON.stringify(p)).join(" ")}`,
      verb,
    );
  }
}
