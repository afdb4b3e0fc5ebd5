import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseColumnType } from "../ovsdb/schema.js";
import { columnTs, GENERATED_DIR, generateTarget, interfaceName, TARGETS } from "./generate.js";

describe("generated row types", () => {
  it.each(TARGETS.map((t) => [t.out, t] as const))(
    "src/generated/%s matches the schema installed on this host",
    async (_name, target) => {
      if (!existsSync(target.schema)) {
        throw new Error(`${target.schema} is missing: apt-get install -y ${target.debianPackage}`);
      }
      const committed = readFileSync(join(GENERATED_DIR, target.out), "utf8");
      const fresh = await generateTarget(target);
      // On failure: the installed OVN/OVS schema changed; run `npx tsx src/gen/generate.ts` in shared/ovsdb.
      expect(committed).toBe(fresh);
    },
  );

  it("names interfaces after tables", () => {
    expect(interfaceName("Logical_Switch_Port")).toBe("LogicalSwitchPort");
    expect(interfaceName("NB_Global")).toBe("NbGlobal");
    expect(interfaceName("Open_vSwitch")).toBe("OpenVSwitch");
    expect(interfaceName("ACL")).toBe("Acl");
    expect(interfaceName("QoS")).toBe("QoS");
  });

  it("types columns as values.ts converts them", () => {
    expect(columnTs(parseColumnType({ key: { type: "string", enum: ["set", ["gre", "erspan"]] } }))).toBe(
      '"gre" | "erspan"',
    );
    expect(columnTs(parseColumnType({ key: "integer", min: 0, max: 1 }))).toBe("number | null");
    expect(columnTs(parseColumnType({ key: "uuid", min: 0, max: "unlimited" }))).toBe("readonly string[]");
    expect(columnTs(parseColumnType({ key: "integer", value: "uuid", min: 0, max: "unlimited" }))).toBe(
      "Readonly<Record<number, string>>",
    );
  });
});
