import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { envVar, natsEnv } from "./config.js";
import type { LogLevel } from "./logger.js";
import { runMain } from "./main.js";

// runMain itself installs process handlers and exits; main.int.test.ts runs it in a child
// process. Here only its typing is checked (by tsc, which type-checks the test files).
describe("runMain typing", () => {
  it("types ctx.config as the runtime variables plus the service's own", () => {
    const Config = z.object({ ...natsEnv, QUEUE: envVar.string(), HTTP_PORT: envVar.port().default(9090) });
    const withSchema = () =>
      runMain("t", { config: Config }, ({ config }) => {
        expectTypeOf(config.NATS_URL).toEqualTypeOf<string>();
        expectTypeOf(config.QUEUE).toEqualTypeOf<string>();
        expectTypeOf(config.HTTP_PORT).toEqualTypeOf<number>();
        expectTypeOf(config.LOG_LEVEL).toEqualTypeOf<LogLevel>();
        expectTypeOf(config.SHUTDOWN_TIMEOUT_MS).toEqualTypeOf<number>();
      });
    const without = () =>
      runMain("t", ({ config }) => {
        expectTypeOf(config.HTTP_HOST).toEqualTypeOf<string>();
        // @ts-expect-error: not part of the runtime variables
        void config.NATS_URL;
      });
    expectTypeOf(withSchema).returns.resolves.toBeVoid();
    expectTypeOf(without).returns.resolves.toBeVoid();
  });
});
