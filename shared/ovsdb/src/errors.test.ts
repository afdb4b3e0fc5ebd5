import { describe, expect, it } from "vitest";
import * as errors from "./errors.js";
import { OvsdbServerError, SERVER_ERROR_STRINGS, serverError } from "./errors.js";

describe("server errors", () => {
  const rfc7047 = [
    ["referential integrity violation", errors.ReferentialIntegrityViolationError],
    ["constraint violation", errors.ConstraintViolationError],
    ["resources exhausted", errors.ResourcesExhaustedError],
    ["I/O error", errors.IoError],
    ["duplicate uuid-name", errors.DuplicateUuidNameError],
    ["domain error", errors.DomainError],
    ["range error", errors.OvsdbRangeError],
    ["timed out", errors.TimedOutError],
    ["not supported", errors.NotSupportedError],
    ["aborted", errors.AbortedError],
    ["not owner", errors.NotOwnerError],
    ["unknown database", errors.UnknownDatabaseError],
    ["unknown method", errors.UnknownMethodError],
    ["syntax error", errors.OvsdbSyntaxError],
    ["unknown column", errors.UnknownColumnError],
    ["internal error", errors.ServerInternalError],
    ["ovsdb error", errors.OvsdbDataError],
    ["permission error", errors.PermissionError],
    ["canceled", errors.CanceledError],
    ["unknown monitor", errors.UnknownMonitorError],
  ] as const;

  it.each(rfc7047)("%s has its own class keeping index and details", (text, Class) => {
    const e = serverError(
      { error: text, details: "d", syntax: "s" },
      { index: 2, operation: "insert into Mirror" },
    );
    expect(e).toBeInstanceOf(Class);
    expect(e).toBeInstanceOf(OvsdbServerError);
    expect(e.error).toBe(text);
    expect(e.index).toBe(2);
    expect(e.details).toBe("d");
    expect(e.syntax).toBe("s");
    expect(e.name).toBe(Class.name);
    expect(e.message).toContain(`${text} in operation 2 (insert into Mirror): d`);
  });

  it("every class is distinct and every known string is covered", () => {
    expect(new Set(rfc7047.map(([, c]) => c)).size).toBe(rfc7047.length);
    for (const s of SERVER_ERROR_STRINGS) expect(serverError(s).constructor).not.toBe(OvsdbServerError);
  });

  it("accepts the bare-string JSON-RPC error form and unknown strings", () => {
    expect(serverError("unknown method", { method: "frob" })).toBeInstanceOf(errors.UnknownMethodError);
    const other = serverError({ error: "something new" });
    expect(other.constructor).toBe(OvsdbServerError);
    expect(other.error).toBe("something new");
  });

  it("marks what may be retried", () => {
    expect(serverError("timed out").retryable).toBe(true);
    expect(serverError("not owner").retryable).toBe(true);
    expect(serverError("constraint violation").retryable).toBe(false);
    expect(new errors.NotConnectedError().retryable).toBe(true);
    expect(new errors.ConnectionClosedError("x").retryable).toBe(true);
  });
});
