/**
 * What can go wrong in one `ovntap` invocation, each with the exit code it ends with.
 *
 *   0  done
 *   1  the request was refused (an error reply) or the mirror failed (`--wait`)
 *   2  usage: an unknown flag, a missing or bad value, an invalid spec; found before anything is sent
 *   3  no answer: NATS cannot be reached, nobody answers on the request subject, or the reply timed
 *      out. The request may or may not have been processed; re-running the command with the same
 *      `--request-id` is safe, intake dedupes it.
 */
/** An error reply's body; the code is kept as a string so a code from a newer intake still prints. */
export interface ReplyErrorBody {
  readonly code: string;
  readonly message: string;
  readonly issues?: readonly { readonly path: string; readonly message: string }[];
}

export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Bad command line or spec; nothing was sent. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = EXIT.USAGE;
  constructor(
    message: string,
    /** The verb whose `--help` to point at, when known. */
    readonly verb?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The first connection to NATS failed. */
export class NatsUnreachableError extends Error {
  override readonly name = "NatsUnreachableError";
  readonly exitCode = EXIT.UNAVAILABLE;
  constructor(
    /** The URL(s) tried, credentials masked. */
    readonly servers: string,
    /** Where the URL came from: "--nats", "NATS_URL", a `.lab/env` path, or "the default". */
    readonly source: string,
    cause: unknown,
  ) {
    const why = describeCause(cause);
    super(
      /authori[sz]ation|authentication|credentials/i.test(why)
        ? `NATS at ${servers} (from ${source}) refused the credentials: ${why}; check the user and ` +
            "password in the URL, NATS_CREDS_FILE, NATS_USER/NATS_PASSWORD or NATS_TOKEN"
        : `cannot reach NATS at ${servers} (from ${source}): ${why}; start nats-server or a lab ` +
            "('npm run lab:up'), or point NATS_URL or --nats at a running server",
      { cause },
    );
  }
}

/** NATS is up but the request got no reply: nobody listens on the subject, or it timed out. */
export class NoReplyError extends Error {
  override readonly name = "NoReplyError";
  readonly exitCode = EXIT.UNAVAILABLE;
  constructor(
    readonly subject: string,
    readonly requestId: string,
    readonly reason: "no-responders" | "timeout" | "connection",
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      reason === "no-responders"
        ? `no intake is answering on ${subject} (is intake running, and connected to this NATS?)`
        : `${detail}; the request may still be processed: re-run with --request-id ${requestId} to retry it safely`,
      options,
    );
  }
}

/** Intake answered `{ok: false, error}`. */
export class ReplyError extends Error {
  override readonly name = "ReplyError";
  readonly exitCode = EXIT.FAILED;
  constructor(readonly error: ReplyErrorBody) {
    super(`${error.code}: ${error.message}`);
  }
}

/** Something answered on the request subject, but not with a reply the contract knows. */
export class InvalidReplyError extends Error {
  override readonly name = "InvalidReplyError";
  readonly exitCode = EXIT.FAILED;
  constructor(subject: string, detail: string) {
    super(`the reply on ${subject} is not an ovntap reply: ${detail}`);
  }
}

/** `--wait` ended without the mirror reaching the phase it waited for. */
export class WaitFailedError extends Error {
  override readonly name = "WaitFailedError";
  readonly exitCode = EXIT.FAILED;
}

/** Reading the event stream failed (no stream, no JetStream). */
export class EventsError extends Error {
  override readonly name = "EventsError";
  readonly exitCode = EXIT.FAILED;
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause instanceof Error ? cause.cause.message : undefined;
    const code = (cause as { code?: unknown }).code;
    const parts = [cause.message || cause.name];
    if (typeof code === "string" && !cause.message.includes(code)) parts.push(code);
    if (inner && inner !== cause.message) parts.push(inner);
    return parts.join(": ");
  }
  return String(cause);
}
