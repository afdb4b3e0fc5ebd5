/** Errors the store throws. Outcomes a caller must handle (not found, quota…) are return values, not errors. */

/** A value read from Redis does not parse: written by something else, or by an incompatible version. */
export class StoreDataError extends Error {
  override readonly name = "StoreDataError";
  constructor(
    readonly key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${key}: ${message}; inspect the key with redis-cli, and delete it if it is not ovntap's`, options);
  }
}

/**
 * A write kept losing its compare-and-set to concurrent writers of the same mirror. Retryable:
 * the request can be sent again.
 */
export class StoreContentionError extends Error {
  override readonly name = "StoreContentionError";
  constructor(
    readonly key: string,
    attempts: number,
  ) {
    super(`${key}: changed by another writer ${attempts} times in a row; retry the request`);
  }
}

/** An argument the store cannot accept (e.g. a status whose observedGeneration exceeds its generation). */
export class StoreArgumentError extends Error {
  override readonly name = "StoreArgumentError";
}
