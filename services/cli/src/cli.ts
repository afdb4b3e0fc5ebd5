/**
 * The `ovntap` command, runnable in-process: every verb parses its flags, checks the request
 * against the contract, talks NATS, prints, and returns the exit code (see errors.ts).
 *
 *   const code = await runCli(["get", "web", "-n", "shop"], { stdout, stderr, env: {}, cwd, nc });
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  MirrorName,
  Namespace,
  Principal,
  SubjectTokenError,
  UNNAMED_MIRROR,
  validate,
  validateRequest,
} from "@ovntap/contracts";
import type { MirrorRequest } from "@ovntap/contracts";
import type { NatsConnection } from "@nats-io/transport-node";
import { noPositionals, oneName, parseCommandLine } from "./args.js";
import type { Values, Verb } from "./args.js";
import { captureCommand } from "./capture-command.js";
import { decapCommand, decodeCommand } from "./decode-command.js";
import { listRequest, mirrorRequest, openSession } from "./client.js";
import type { Session } from "./client.js";
import { defaultPrincipal, resolveNatsTarget } from "./config.js";
import type { Env } from "./config.js";
import {
  EventsError,
  EXIT,
  InvalidReplyError,
  NatsUnreachableError,
  NoReplyError,
  ReplyError,
  UsageError,
  WaitFailedError,
} from "./errors.js";
import { eventFilter, readEvents } from "./events.js";
import type { StoredEvent } from "./events.js";
import {
  expiresText,
  formatDocument,
  formatErrorBody,
  formatEventLine,
  formatMirrorTable,
  formatUnknownEventLine,
  keyText,
  portsText,
  sinkText,
  timeoutText,
} from "./format.js";
import type { MirrorView, OutputFormat } from "./format.js";
import { MAIN_HELP, verbHelp } from "./help.js";
import { checkSpec, describeIssues, mergeFileSpec, readSpecFile, specFromFlags } from "./spec-input.js";
import { parseDurationMs, parseSeconds, parseSelector } from "./values.js";
import { MirrorWatch, waitForMirror } from "./wait.js";

export interface Output {
  /** Text; `capture -w -` writes bytes (process.stdout takes both). */
  write(chunk: string | Uint8Array): unknown;
  /** A stream's backpressure signal, when it has one (`capture -w -` waits on it). */
  once?(event: "drain", listener: () => void): unknown;
  /** A terminal: `capture -w` draws its live counter on stderr only then. */
  readonly isTTY?: boolean;
}

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  /** The environment (NATS_URL, OVNTAP_NAMESPACE, OVNTAP_PRINCIPAL, NATS credentials). */
  readonly env?: Env;
  /** Where `-f` paths and `.lab/env` are looked up. */
  readonly cwd?: string;
  /** Read by `-f -`. */
  readonly stdin?: AsyncIterable<Buffer | string>;
  /** Use this connection instead of connecting; the CLI leaves it open. */
  readonly nc?: NatsConnection;
  /** Ends `events --follow` (normally) and `--wait` (as a failure); main wires it to SIGINT. */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
  /** How often `--wait` polls `get` as a backstop to events; default 2 s. */
  readonly pollIntervalMs?: number;
}

export interface Cli {
  run(argv: readonly string[]): Promise<number>;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_WAIT_TIMEOUT_MS = 120_000;
export const DEFAULT_POLL_INTERVAL_MS = 2_000;
export const DEFAULT_NAMESPACE = "default";

export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

interface Context {
  readonly verb: Verb;
  readonly values: Values;
  readonly positionals: string[];
  readonly given: ReadonlySet<string>;
}

export function createCli(io: CliIo): Cli {
  const env: Env = io.env ?? {};
  const cwd = io.cwd ?? process.cwd();
  const now = io.now ?? Date.now;
  const out = (s: string) => void io.stdout.write(s);
  const err = (s: string) => void io.stderr.write(s);

  // -------------------------------------------------------------------------------------------
  // Shared pieces

  function outputFormat(ctx: Context, allowed: readonly string[] = ["table", "json", "yaml"]): OutputFormat {
    const o = ctx.values.output ?? "table";
    if (!allowed.includes(o)) {
      throw new UsageError(`-o/--output: ${JSON.stringify(o)} is not one of ${allowed.join(", ")}`, ctx.verb);
    }
    return o as OutputFormat;
  }

  function namespaceOf(ctx: Context): string {
    return ctx.values.namespace ?? (env.OVNTAP_NAMESPACE?.trim() || DEFAULT_NAMESPACE);
  }

  function requestTimeout(ctx: Context): number {
    const v = ctx.values["request-timeout"];
    if (v === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
    const ms = parseDurationMs("--request-timeout", v, ctx.verb);
    if (ms < 1) throw new UsageError("--request-timeout: must be more than 0", ctx.verb);
    return ms;
  }

  function waitTimeout(ctx: Context): number | undefined {
    const v = ctx.values.timeout;
    if (!ctx.values.wait) {
      if (v !== undefined) throw new UsageError("--timeout goes with --wait", ctx.verb);
      return undefined;
    }
    if (v === undefined) return DEFAULT_WAIT_TIMEOUT_MS;
    const ms = parseDurationMs("--timeout", v, ctx.verb);
    if (ms < 1) throw new UsageError("--timeout: must be more than 0", ctx.verb);
    return ms;
  }

  /** requestId and principal; a default principal that the contract refuses is left out. */
  function base(ctx: Context): { requestId: string; principal?: string } {
    const requestId = ctx.values["request-id"] ?? randomUUID();
    if (ctx.values.principal !== undefined) return { requestId, principal: ctx.values.principal };
    const fallback = defaultPrincipal(env);
    return fallback !== undefined && validate(Principal, fallback).ok
      ? { requestId, principal: fallback }
      : { requestId };
  }

  /** The whole request checked as intake will check it; issues name the flag or the file field. */
  function checkRequest(
    ctx: Context,
    body: Record<string, unknown>,
    from: { file: string } | { flags: Record<string, unknown> | undefined },
  ): MirrorRequest {
    const r = validateRequest(body);
    if (r.ok) return r.value;
    throw new UsageError(`invalid request:\n${describeIssues(r.error.issues, from)}`, ctx.verb);
  }

  async function withSession<T>(
    ctx: Context,
    longLived: boolean,
    fn: (s: Session, timeoutMs: number) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = requestTimeout(ctx);
    const target = resolveNatsTarget(ctx.values.nats, env, cwd);
    const session = await openSession(target, env, { timeoutMs, longLived }, io.nc);
    try {
      return await fn(session, timeoutMs);
    } finally {
      await session.close();
    }
  }

  function printView(view: MirrorView, format: OutputFormat, summary: (v: MirrorView) => string): void {
    if (format === "table") out(`${summary(view)}\n`);
    else out(formatDocument(view, format));
  }

  const who = (v: MirrorView) => `mirror ${v.mirror.spec.namespace}/${v.mirror.spec.name}`;

  /** `Pending, generation 1, sink 10.0.0.9 key 7, ports …, expires in 59m`; without the phase when the caller says it. */
  function describeState(v: MirrorView, withPhase = true): string {
    const { spec } = v.mirror;
    const key = keyText(spec.target, v.status);
    const parts = [
      ...(withPhase ? [v.status.phase] : []),
      `generation ${v.mirror.generation}`,
      `sink ${sinkText(spec.target, v.status)}${key === "-" ? "" : ` key ${key}`}`,
      ...(v.status.ports.length ? [`ports ${portsText(v.status.ports)}`] : []),
      `expires ${expiresText(v.status.expiresAt ?? v.mirror.expiresAt, now())}`,
    ];
    return parts.join(", ");
  }

  function progress(line: string): void {
    err(`${line}\n`);
  }

  // -------------------------------------------------------------------------------------------
  // Verbs

  async function create(ctx: Context): Promise<number> {
    const { values, positionals } = ctx;
    const format = outputFormat(ctx);
    const timeoutMs = waitTimeout(ctx);
    const name =
      positionals.length > 0 || values.name !== undefined
        ? oneName("create", values, positionals)
        : undefined;
    let spec: Record<string, unknown>;
    let from: { file: string } | { flags: Record<string, unknown> };
    if (values.file !== undefined) {
      const { raw, where } = await readSpecFile(values.file, cwd, io.stdin);
      spec = mergeFileSpec(raw, where, values, ctx.given, name, namespaceOf(ctx));
      from = { file: where };
    } else {
      if (name === undefined) {
        throw new UsageError(
          "needs the mirror's NAME (ovntap create NAME …, or --name, or -f FILE)",
          "create",
        );
      }
      spec = specFromFlags(values, name, namespaceOf(ctx));
      from = { flags: spec };
    }
    const { namespace, name: mirrorName } = checkSpec(spec, from);
    const body = checkRequest(ctx, { ...base(ctx), op: "create", spec }, from);

    return withSession(ctx, timeoutMs !== undefined, async (session, reqTimeout) => {
      // Subscribe before sending, so no event of this request can be missed.
      const watch = timeoutMs !== undefined ? new MirrorWatch(session.nc, namespace, mirrorName) : undefined;
      let view: MirrorView;
      try {
        view = await mirrorRequest(session, body, reqTimeout);
      } catch (e) {
        watch?.close();
        throw e;
      }
      if (watch === undefined || timeoutMs === undefined) {
        printView(view, format, (v) => `${who(v)} created: ${describeState(v)}`);
        return EXIT.OK;
      }
      progress(
        `${who(view)} created (generation ${view.mirror.generation}); waiting up to ${timeoutText(timeoutMs)} for it to be Active`,
      );
      const final = await waitForMirror(watch, {
        namespace,
        name: mirrorName,
        goal: "active",
        generation: view.mirror.generation,
        timeoutMs,
        pollMs: io.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
        poll: () => getOrUndefined(session, namespace, mirrorName, reqTimeout, ctx),
        progress,
        initial: view,
        ...(io.signal ? { signal: io.signal } : {}),
      });
      printView(final ?? view, format, (v) => `${who(v)} is Active: ${describeState(v, false)}`);
      return EXIT.OK;
    });
  }

  async function getOrUndefined(
    session: Session,
    namespace: string,
    name: string,
    timeoutMs: number,
    ctx: Context,
  ): Promise<MirrorView | undefined> {
    try {
      return await mirrorRequest(
        session,
        { ...base(ctx), requestId: randomUUID(), op: "get", namespace, name },
        timeoutMs,
      );
    } catch (e) {
      if (e instanceof ReplyError && e.error.code === "NOT_FOUND") return undefined;
      throw e;
    }
  }

  async function remove(ctx: Context): Promise<number> {
    const format = outputFormat(ctx);
    const timeoutMs = waitTimeout(ctx);
    const name = oneName("delete", ctx.values, ctx.positionals);
    const namespace = namespaceOf(ctx);
    const body = checkRequest(ctx, { ...base(ctx), op: "delete", namespace, name }, { flags: undefined });
    return withSession(ctx, timeoutMs !== undefined, async (session, reqTimeout) => {
      const watch = timeoutMs !== undefined ? new MirrorWatch(session.nc, namespace, name) : undefined;
      let view: MirrorView;
      try {
        view = await mirrorRequest(session, body, reqTimeout);
      } catch (e) {
        watch?.close();
        throw e;
      }
      if (watch === undefined || timeoutMs === undefined) {
        printView(view, format, (v) => `${who(v)} deletion requested`);
        return EXIT.OK;
      }
      progress(`${who(view)} deletion requested; waiting up to ${timeoutText(timeoutMs)} for it to be gone`);
      const final = await waitForMirror(watch, {
        namespace,
        name,
        goal: "deleted",
        generation: view.mirror.generation,
        timeoutMs,
        pollMs: io.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
        poll: () => getOrUndefined(session, namespace, name, reqTimeout, ctx),
        progress,
        initial: view,
        ...(io.signal ? { signal: io.signal } : {}),
      });
      printView(final ?? view, format, (v) => `${who(v)} deleted`);
      return EXIT.OK;
    });
  }

  async function get(ctx: Context): Promise<number> {
    const format = outputFormat(ctx);
    const name = oneName("get", ctx.values, ctx.positionals);
    const body = checkRequest(
      ctx,
      { ...base(ctx), op: "get", namespace: namespaceOf(ctx), name },
      { flags: undefined },
    );
    return withSession(ctx, false, async (session, timeoutMs) => {
      const view = await mirrorRequest(session, body, timeoutMs);
      out(format === "table" ? formatMirrorTable([view], now()) : formatDocument(view, format));
      return EXIT.OK;
    });
  }

  async function list(ctx: Context): Promise<number> {
    noPositionals("list", ctx.positionals);
    const format = outputFormat(ctx);
    const namespace = namespaceOf(ctx);
    const selector =
      ctx.values.selector === undefined
        ? undefined
        : parseSelector("--selector", ctx.values.selector, "list");
    const body = checkRequest(
      ctx,
      { ...base(ctx), op: "list", namespace, ...(selector ? { selector } : {}) },
      { flags: undefined },
    );
    return withSession(ctx, false, async (session, timeoutMs) => {
      const items = await listRequest(session, body, timeoutMs);
      if (format !== "table") out(formatDocument(items, format));
      else if (items.length === 0)
        err(`No mirrors in namespace ${namespace}${selector ? " match the selector" : ""}.\n`);
      else out(formatMirrorTable(items, now()));
      return EXIT.OK;
    });
  }

  async function extend(ctx: Context): Promise<number> {
    const format = outputFormat(ctx);
    const name = oneName("extend", ctx.values, ctx.positionals);
    if (ctx.values.ttl === undefined) throw new UsageError("needs --ttl (seconds, or 90m, 2h, 1d)", "extend");
    const ttlSeconds = parseSeconds("--ttl", ctx.values.ttl, "extend");
    const body = checkRequest(
      ctx,
      { ...base(ctx), op: "extend", namespace: namespaceOf(ctx), name, ttlSeconds },
      { flags: undefined },
    );
    return withSession(ctx, false, async (session, timeoutMs) => {
      const view = await mirrorRequest(session, body, timeoutMs);
      printView(
        view,
        format,
        (v) => `${who(v)} now expires ${v.mirror.expiresAt} (${expiresText(v.mirror.expiresAt, now())})`,
      );
      return EXIT.OK;
    });
  }

  async function events(ctx: Context): Promise<number> {
    const { values } = ctx;
    const format = (values.output ?? "text") === "table" ? "text" : (values.output ?? "text");
    if (!["text", "json", "yaml"].includes(format)) {
      throw new UsageError(
        `-o/--output: ${JSON.stringify(values.output)} is not one of text, json, yaml`,
        "events",
      );
    }
    if (ctx.positionals.length > 1) throw new UsageError("takes at most one mirror name", "events");
    const [positional] = ctx.positionals;
    if (positional !== undefined && values.mirror !== undefined && positional !== values.mirror) {
      throw new UsageError(
        `the mirror is given twice (${positional} and --mirror ${values.mirror})`,
        "events",
      );
    }
    const mirror = positional ?? values.mirror;
    const namespace = mirror !== undefined ? namespaceOf(ctx) : values.namespace;
    if (namespace !== undefined) {
      const r = validate(Namespace, namespace);
      if (!r.ok) throw new UsageError(`--namespace: ${r.error.issues[0]?.message ?? "invalid"}`, "events");
    }
    if (mirror !== undefined && mirror !== UNNAMED_MIRROR) {
      const r = validate(MirrorName, mirror);
      if (!r.ok) throw new UsageError(`--mirror: ${r.error.issues[0]?.message ?? "invalid"}`, "events");
    }
    const since = values.since === undefined ? undefined : parseSince(values.since);
    const filter = eventFilter(namespace, mirror);
    const follow = values.follow === true;

    return withSession(ctx, follow, async (session) => {
      const onEvent = (e: StoredEvent) => {
        if (format === "json") out(`${JSON.stringify(e.raw)}\n`);
        else if (format === "yaml") out(`---\n${formatDocument(e.raw, "yaml")}`);
        else out(e.event ? formatEventLine(e.event) : formatUnknownEventLine(e.raw, e.subject));
      };
      await readEvents(session.nc, {
        filter,
        follow,
        onEvent,
        ...(since ? { since } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
      });
      return EXIT.OK;
    });
  }

  function parseSince(value: string): Date {
    if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
      const t = Date.parse(value);
      if (Number.isNaN(t))
        throw new UsageError(`--since: ${JSON.stringify(value)} is not an RFC 3339 time`, "events");
      return new Date(t);
    }
    return new Date(now() - parseDurationMs("--since", value, "events"));
  }

  function capture(ctx: Context): Promise<number> {
    return captureCommand({
      values: ctx.values,
      positionals: ctx.positionals,
      namespace: namespaceOf(ctx),
      stdout: io.stdout,
      stderr: io.stderr,
      ...(io.signal ? { signal: io.signal } : {}),
      withSession: (fn) => withSession(ctx, true, fn),
      getMirror: (session, namespace, name, timeoutMs) =>
        mirrorRequest(session, { ...base(ctx), op: "get", namespace, name }, timeoutMs),
      version: cliVersion(),
    });
  }

  /** `decode` and `decap` work on capture files, offline. */
  function offline(ctx: Context) {
    return {
      values: ctx.values,
      positionals: ctx.positionals,
      stdout: io.stdout,
      stderr: io.stderr,
      cwd,
      ...(io.stdin ? { stdin: io.stdin } : {}),
    };
  }

  const VERB_RUNNERS: Record<Verb, (ctx: Context) => Promise<number>> = {
    create,
    delete: remove,
    get,
    list,
    extend,
    events,
    capture,
    decode: (ctx) => decodeCommand(offline(ctx)),
    decap: (ctx) => decapCommand(offline(ctx)),
  };

  // -------------------------------------------------------------------------------------------
  // Errors → messages and exit codes

  function report(e: unknown): number {
    if (e instanceof UsageError) {
      const where = e.verb ? `ovntap ${e.verb}` : "ovntap";
      err(`${where}: ${e.message}\nRun '${where} --help' for usage.\n`);
      return EXIT.USAGE;
    }
    if (e instanceof ReplyError) {
      err(formatErrorBody(e.error));
      return EXIT.FAILED;
    }
    if (e instanceof NatsUnreachableError || e instanceof NoReplyError) {
      err(`ovntap: ${e.message}\n`);
      return EXIT.UNAVAILABLE;
    }
    if (e instanceof WaitFailedError || e instanceof EventsError || e instanceof InvalidReplyError) {
      err(`ovntap: ${e.message}\n`);
      return EXIT.FAILED;
    }
    if (e instanceof SubjectTokenError) {
      err(`ovntap: ${e.message}\n`);
      return EXIT.USAGE;
    }
    err(`ovntap: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.FAILED;
  }

  return {
    async run(argv) {
      try {
        const cmd = parseCommandLine(argv);
        switch (cmd.kind) {
          case "help":
            out(cmd.verb ? verbHelp(cmd.verb) : MAIN_HELP);
            return EXIT.OK;
          case "version":
            out(`ovntap ${cliVersion()}\n`);
            return EXIT.OK;
          case "verb":
            return await VERB_RUNNERS[cmd.verb]({
              verb: cmd.verb,
              values: cmd.values,
              positionals: cmd.positionals,
              given: cmd.given,
            });
        }
      } catch (e) {
        return report(e);
      }
    },
  };
}

export function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  return createCli(io).run(argv);
}
