/**
 * The one error the reconcile core throws: an ovntap error code (contracts ERROR_CODES), the
 * CamelCase reason status carries, and whether trying again can help. The worker turns a
 * non-retryable one into BullMQ's UnrecoverableError.
 *
 *   throw new ReconcileError("KEY_IN_USE", "GRE key 7 is already used towards 198.51.100.2 by …");
 */
import { ERROR_CODE_INFO, type ErrorCode } from "@ovntap/contracts";

export class ReconcileError extends Error {
  override name = "ReconcileError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** CamelCase form of the code, for `MirrorStatus.reason`. */
  readonly reason: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.retryable = options?.retryable ?? ERROR_CODE_INFO[code].retryable;
    this.reason = reasonOf(code);
  }
}

/** `KEY_IN_USE` → `KeyInUse`: status reasons are CamelCase (contracts `Reason`). */
export function reasonOf(code: string): string {
  return code
    .toLowerCase()
    .split("_")
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ""))
    .join("");
}
