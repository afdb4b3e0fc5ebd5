import { describe, expect, it } from "vitest";
import {
  ERROR_CODE_INFO,
  ERROR_CODES,
  JobIdError,
  mirrorJobId,
  nodeQueue,
  NodeApplyJob,
  OVN_APPLY_QUEUE,
  OvnApplyJob,
  parseMirrorJobId,
} from "./index.js";

describe("queues and job ids", () => {
  it("names the queues", () => {
    expect(OVN_APPLY_QUEUE).toBe("ovn-apply");
    expect(nodeQueue("ip-10-0-0-1.ec2.internal")).toBe("node.ip-10-0-0-1.ec2.internal");
    expect(() => nodeQueue("a:b")).toThrow(JobIdError);
  });

  it("builds <namespace>/<name>@<generation> without ':' and parses it back", () => {
    const id = mirrorJobId({ namespace: "shop", name: "web", generation: 3 });
    expect(id).toBe("shop/web@3");
    expect(id).not.toContain(":");
    expect(parseMirrorJobId(id)).toEqual({ namespace: "shop", name: "web", generation: 3 });
    expect(parseMirrorJobId("shop/web")).toBeUndefined();
    expect(parseMirrorJobId("shop/web@0")).toBeUndefined();
  });

  it("refuses ids it cannot build, naming the argument", () => {
    expect(() => mirrorJobId({ namespace: "a:b", name: "web", generation: 1 })).toThrow(/^namespace: /);
    expect(() => mirrorJobId({ namespace: "shop", name: "", generation: 1 })).toThrow(/^name: /);
    expect(() => mirrorJobId({ namespace: "shop", name: "web", generation: 0 })).toThrow(/^generation: /);
    expect(() => mirrorJobId({ namespace: "shop", name: "web", generation: 1.5 })).toThrow(JobIdError);
  });

  it("validates job payloads", () => {
    const job = { namespace: "shop", name: "web", generation: 1, reason: "create" };
    expect(OvnApplyJob.parse(job)).toEqual(job);
    expect(OvnApplyJob.safeParse({ ...job, reason: "because" }).success).toBe(false);
    expect(NodeApplyJob.safeParse({ ...job, node: "n1" }).success).toBe(true);
    expect(NodeApplyJob.safeParse(job).success).toBe(false);
  });
});

describe("error codes", () => {
  it("has the required codes, each with retry advice", () => {
    for (const code of [
      "INVALID_REQUEST",
      "UNSUPPORTED",
      "FORBIDDEN",
      "NAMESPACE_PROTECTED",
      "SINK_NOT_ALLOWED",
      "QUOTA_EXCEEDED",
      "TTL_TOO_LONG",
      "ALREADY_EXISTS",
      "NOT_FOUND",
      "CONFLICT",
      "KEY_IN_USE",
      "KEY_SPACE_EXHAUSTED",
      "PORT_NOT_FOUND",
      "BRIDGE_MIRROR_LIMIT",
      "MTU_TOO_SMALL",
      "LINK_TYPE_UNSUPPORTED",
      "INTERNAL",
      "UNAVAILABLE",
    ]) {
      expect(ERROR_CODES).toHaveProperty(code, code);
    }
    expect(Object.keys(ERROR_CODE_INFO).sort()).toEqual(Object.values(ERROR_CODES).sort());
    expect(ERROR_CODE_INFO.INVALID_REQUEST.retryable).toBe(false);
    expect(ERROR_CODE_INFO.UNAVAILABLE.retryable).toBe(true);
  });
});
