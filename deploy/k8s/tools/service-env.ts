/**
 * The environment each ovntap service reads, from its own configuration schema, so deployment
 * files (Kubernetes manifests, docker-compose.yml) can be checked against it: a variable a file
 * sets that no service reads is a typo or a leftover; a required one it does not set is a crash
 * at start (exit 78).
 *
 *     const env = await serviceEnv(repoRoot, "ovn-applier");
 *     env.names.has("OVN_NB_DB");      // true
 *     env.required.has("NATS_URL");    // true
 *     env.check({ NATS_URL: "nats://nats:4222", … });   // the problems loadConfig would report
 *
 * A service's schema is the zod object its `src/config.ts` exports (`<Name>Env`), merged over the
 * runtime variables every service reads (`runtimeEnv`), as `runMain` merges them. A service that
 * still declares its schema inside `src/main.ts` (which runs the service when imported) is read
 * from the source instead: the keys of its `z.object({...})`, spreads of the runtime's groups
 * (`...natsEnv`) resolved against `@ovntap/runtime`.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as runtime from "@ovntap/runtime";
import { loadConfig, runtimeEnv } from "@ovntap/runtime";
import ts from "typescript";
import { z } from "zod";

export interface ServicePackage {
  /** Folder name under services/, which is also the image's entrypoint argument. */
  name: string;
  /** `ovntap.service`: a long-running program. */
  service: boolean;
  /** `ovntap.lab !== false`: the native lab runs it. */
  lab: boolean;
}

export interface ServiceEnv {
  service: string;
  /** Where the schema came from. */
  source: string;
  names: ReadonlySet<string>;
  required: ReadonlySet<string>;
  /** Problems loadConfig reports for this environment, or [] (only for schemas read from config.ts). */
  check(env: Record<string, string>): string[];
  /** The configuration the service would run with, defaults applied; undefined for a schema read from source. */
  effective(env: Record<string, string>): Record<string, unknown> | undefined;
}

/** Every workspace under services/ with its `ovntap` flags. */
export function servicePackages(repoRoot: string): ServicePackage[] {
  const dir = join(repoRoot, "services");
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, "package.json")))
    .sort()
    .map((name) => {
      const pkg = JSON.parse(readFileSync(join(dir, name, "package.json"), "utf8")) as {
        ovntap?: { service?: unknown; lab?: unknown };
      };
      return { name, service: pkg.ovntap?.service === true, lab: pkg.ovntap?.lab !== false };
    });
}

function isZodObject(v: unknown): v is z.ZodObject {
  return v instanceof z.ZodObject;
}

function requiredKeys(shape: Record<string, z.ZodType>): Set<string> {
  return new Set(
    Object.entries(shape)
      .filter(([, s]) => !s.safeParse(undefined).success)
      .map(([k]) => k),
  );
}

function fromShape(
  service: string,
  source: string,
  shape: Record<string, z.ZodType>,
  exact: boolean,
): ServiceEnv {
  const merged = { ...runtimeEnv, ...shape } as Record<string, z.ZodType>;
  const schema = z.object(merged);
  return {
    service,
    source,
    names: new Set(Object.keys(merged)),
    required: requiredKeys(merged),
    check(env) {
      if (!exact) return [];
      try {
        loadConfig(schema, env);
        return [];
      } catch (err) {
        if (err instanceof runtime.ConfigError) return err.problems.map((p) => `${p.variable}: ${p.message}`);
        throw err;
      }
    },
    effective: (env) => (exact ? loadConfig(schema, env) : undefined),
  };
}

/** The variables `service` reads; throws when its schema cannot be found. */
export async function serviceEnv(repoRoot: string, service: string): Promise<ServiceEnv> {
  const src = join(repoRoot, "services", service, "src");
  const configFile = join(src, "config.ts");
  if (existsSync(configFile)) {
    const mod = (await import(pathToFileURL(configFile).href)) as Record<string, unknown>;
    const schemas = Object.entries(mod).filter(([name, v]) => name.endsWith("Env") && isZodObject(v));
    if (schemas.length !== 1) {
      throw new Error(
        `services/${service}/src/config.ts exports ${schemas.length} zod objects named *Env (${schemas.map(([n]) => n).join(", ")}), not 1`,
      );
    }
    const [name, schema] = schemas[0] as [string, z.ZodObject];
    return fromShape(service, `services/${service}/src/config.ts ${name}`, schema.shape, true);
  }
  const mainFile = join(src, "main.ts");
  if (!existsSync(mainFile)) throw new Error(`services/${service} has neither src/config.ts nor src/main.ts`);
  return fromMainSource(service, mainFile);
}

/** The first `z.object({...})` of main.ts: its keys, and the runtime groups it spreads. */
function fromMainSource(service: string, file: string): ServiceEnv {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  let literal: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node): void => {
    if (literal) return;
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.getText(source) === "z.object" &&
      node.arguments[0] &&
      ts.isObjectLiteralExpression(node.arguments[0])
    ) {
      literal = node.arguments[0];
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (!literal) throw new Error(`services/${service}/src/main.ts has no z.object({...}) configuration`);

  const names = new Set(Object.keys(runtimeEnv));
  const required = requiredKeys(runtimeEnv);
  for (const p of literal.properties) {
    if (ts.isSpreadAssignment(p) && ts.isIdentifier(p.expression)) {
      const group = (runtime as Record<string, unknown>)[p.expression.text];
      if (!group || typeof group !== "object") {
        throw new Error(
          `services/${service}/src/main.ts spreads ${p.expression.text}, which @ovntap/runtime does not export`,
        );
      }
      for (const k of Object.keys(group)) names.add(k);
      for (const k of requiredKeys(group as Record<string, z.ZodType>)) required.add(k);
    } else if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) {
      names.add(p.name.text);
      if (!/\.(optional|default)\(/.test(p.initializer.getText(source))) required.add(p.name.text);
      else required.delete(p.name.text);
    } else {
      throw new Error(
        `services/${service}/src/main.ts: cannot read ${p.getText(source)} in its configuration`,
      );
    }
  }
  return {
    service,
    source: `services/${service}/src/main.ts (read from the source)`,
    names,
    required,
    check: () => [],
    effective: () => undefined,
  };
}
