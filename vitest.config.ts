import { defineConfig } from "vitest/config";

// One run over every workspace. "unit" tests need nothing but Node; "integration"
// tests (*.int.test.ts) start real servers (nats-server, redis-server, ovsdb-server,
// ovs-vswitchd, ovn-controller) on ephemeral ports and need root for the lab.
// Workspace packages resolve to their TypeScript sources through the "@ovntap/source"
// export condition; tests run in Vite's SSR mode, so each project needs it there too.
const resolve = { conditions: ["@ovntap/source"] };
const ssr = { resolve: { conditions: ["@ovntap/source"], externalConditions: ["@ovntap/source"] } };
const roots = ["shared/*/src/**", "services/*/src/**", "deploy/*/src/**", "test/**"];

export default defineConfig({
  resolve,
  ssr,
  test: {
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: "unit",
          // Unit tests first, then the integration tests with their own worker limit.
          sequence: { groupOrder: 0 },
          include: roots.map((r) => `${r}/*.test.ts`),
          exclude: ["**/*.int.test.ts", "**/node_modules/**", "**/dist/**"],
          environment: "node",
          // A deadline against hangs, not a speed check: this shared 2-core machine is
          // often busy, and speed is measured by the benchmarks.
          testTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: "integration",
          sequence: { groupOrder: 1 },
          include: roots.map((r) => `${r}/*.int.test.ts`),
          exclude: ["**/node_modules/**", "**/dist/**"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Integration files start real daemons; two at once is what 2 cores carry.
          maxWorkers: 2,
          fileParallelism: true,
        },
      },
    ],
  },
});
