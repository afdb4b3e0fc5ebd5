/**
 * Requests to intake on `ovntap.v1.req.<namespace>`, their replies checked against the contract.
 *
 *     const intake = createIntakeClient({ nc, timeoutMs: 10_000 });
 *     const reply = await intake.request("shop", { requestId, op: "get", namespace: "shop", name: "web" });
 *     if (!reply.ok) reply.error.code;   // intake's verdict
 *
 * The controller does not validate what it sends: a TrafficMirror's spec goes to intake as it is,
 * and intake's INVALID_REQUEST (with the field and the limit) is what the resource's status says.
 */
import { errors, type NatsConnection } from "@nats-io/transport-node";
import { MirrorReply, reqSubject, validate } from "@ovntap/contracts";
import type { MirrorReply as MirrorReplyType } from "@ovntap/contracts";

/** A request body: `{requestId, principal?, op, …}` (the spec is not checked here). */
export type IntakeRequest = { requestId: string; op: "create" | "delete" | "get" | "extend" } & Record<
  string,
  unknown
>;

export interface IntakeClient {
  /** Intake's reply; throws IntakeUnavailableError when none comes, or one the contract refuses. */
  request(namespace: string, body: IntakeRequest): Promise<MirrorReplyType>;
}

/** No reply from intake (none running, NATS down, a timeout), or a reply that is not one; retry later. */
export class IntakeUnavailableError extends Error {
  override readonly name = "IntakeUnavailableError";
  constructor(
    readonly subject: string,
    readonly reason: "no-responders" | "timeout" | "connection" | "invalid-reply",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function createIntakeClient(opts: { nc: NatsConnection; timeoutMs: number }): IntakeClient {
  return {
    async request(namespace, body) {
      const subject = reqSubject(namespace);
      let msg;
      try {
        msg = await opts.nc.request(subject, JSON.stringify(body), { timeout: opts.timeoutMs });
      } catch (err) {
        if (err instanceof errors.RequestError && err.isNoResponders()) {
          throw new IntakeUnavailableError(subject, "no-responders", `no intake answers on ${subject}`, {
            cause: err,
          });
        }
        if (err instanceof errors.TimeoutError) {
          throw new IntakeUnavailableError(
            subject,
            "timeout",
            `no reply on ${subject} within ${opts.timeoutMs} ms (REQUEST_TIMEOUT_MS)`,
            { cause: err },
          );
        }
        throw new IntakeUnavailableError(
          subject,
          "connection",
          `the request on ${subject} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      let raw: unknown;
      try {
        raw = msg.json<unknown>();
      } catch (err) {
        throw new IntakeUnavailableError(subject, "invalid-reply", `the reply on ${subject} is not JSON`, {
          cause: err,
        });
      }
      const r = validate(MirrorReply, raw, "reply");
      if (!r.ok) {
        throw new IntakeUnavailableError(
          subject,
          "invalid-reply",
          `the reply on ${subject} is invalid: ${r.error.message}`,
        );
      }
      return r.value;
    },
  };
}
