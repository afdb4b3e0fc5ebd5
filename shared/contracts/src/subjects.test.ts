import { describe, expect, it } from "vitest";
import {
  AGENTS_KV_BUCKET,
  agentSubject,
  CAPTURE_STREAM,
  CAPTURE_STREAM_SUBJECTS,
  captureSubject,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  eventSubject,
  flowSubject,
  namespaceSubjects,
  nodeFromToken,
  nodeToken,
  parseSubject,
  PCAP_OVER_IP_PORT,
  reqSubject,
  reqWildcard,
  statsSubject,
  SubjectTokenError,
  unknownCaptureSubject,
} from "./index.js";

describe("subject builders", () => {
  it("build every subject", () => {
    expect(reqSubject("shop")).toBe("ovntap.v1.req.shop");
    expect(reqWildcard).toBe("ovntap.v1.req.>");
    expect(eventSubject("shop", "web")).toBe("ovntap.v1.events.shop.web");
    expect(captureSubject("shop", "web", "node-1")).toBe("ovntap.v1.capture.shop.web.node-1");
    expect(unknownCaptureSubject("node-1")).toBe("ovntap.v1.capture._unknown.node-1");
    expect(flowSubject("shop", "web")).toBe("ovntap.v1.flows.shop.web");
    expect(statsSubject("shop", "web")).toBe("ovntap.v1.stats.shop.web");
    expect(agentSubject("node-1")).toBe("ovntap.v1.agents.node-1");
  });

  it("export the stream, bucket and port names", () => {
    expect(EVENTS_STREAM).toBe("OVNTAP_EVENTS");
    expect(EVENTS_STREAM_SUBJECTS).toBe("ovntap.v1.events.>");
    expect(CAPTURE_STREAM).toBe("OVNTAP_CAPTURE");
    expect(CAPTURE_STREAM_SUBJECTS).toBe("ovntap.v1.capture.>");
    expect(AGENTS_KV_BUCKET).toBe("ovntap_agents");
    expect(PCAP_OVER_IP_PORT).toBe(57012);
  });

  const builders: [string, string, (bad: string) => string][] = [
    ["reqSubject", "namespace", (bad) => reqSubject(bad)],
    ["eventSubject", "namespace", (bad) => eventSubject(bad, "web")],
    ["eventSubject", "mirror", (bad) => eventSubject("shop", bad)],
    ["captureSubject", "namespace", (bad) => captureSubject(bad, "web", "n1")],
    ["captureSubject", "mirror", (bad) => captureSubject("shop", bad, "n1")],
    ["captureSubject", "node", (bad) => captureSubject("shop", "web", bad)],
    ["unknownCaptureSubject", "node", (bad) => unknownCaptureSubject(bad)],
    ["flowSubject", "namespace", (bad) => flowSubject(bad, "web")],
    ["flowSubject", "mirror", (bad) => flowSubject("shop", bad)],
    ["statsSubject", "namespace", (bad) => statsSubject(bad, "web")],
    ["statsSubject", "mirror", (bad) => statsSubject("shop", bad)],
    ["agentSubject", "node", (bad) => agentSubject(bad)],
    ["namespaceSubjects", "namespace", (bad) => namespaceSubjects(bad).events],
  ];
  // '.' is refused in namespaces and mirrors; node names may contain dots (see nodeToken).
  const forbidden = ["", "a.b", "a*", "*", "a>", ">", "a b", " a", "a\tb", "a\nb", "a\u0000b"];

  for (const [builder, argument, build] of builders) {
    for (const bad of forbidden) {
      if (argument === "node" && bad === "a.b") continue;
      it(`${builder} refuses ${argument} ${JSON.stringify(bad)}`, () => {
        let thrown: unknown;
        try {
          build(bad);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(SubjectTokenError);
        const err = thrown as SubjectTokenError;
        expect(err.name).toBe("SubjectTokenError");
        expect(err.argument).toBe(argument);
        expect(err.message.startsWith(`${argument}: `)).toBe(true);
      });
    }
  }

  it("names the forbidden character", () => {
    expect(() => reqSubject("a.b")).toThrow(/namespace: "a.b" contains "\."/);
    expect(() => eventSubject("shop", "w*")).toThrow(/mirror: "w\*" contains "\*"/);
    expect(() => eventSubject("shop", "w>")).toThrow(/mirror: "w>" contains ">"/);
    expect(() => reqSubject("a b")).toThrow(/whitespace/);
    expect(() => reqSubject("")).toThrow(/empty/);
  });

  it("refuses names that are not DNS-1123 labels", () => {
    expect(() => reqSubject("Shop")).toThrow(SubjectTokenError);
    expect(() => reqSubject("_unknown")).toThrow(SubjectTokenError);
    expect(() => eventSubject("shop", "a".repeat(64))).toThrow(SubjectTokenError);
  });

  it("writes dots in node names as underscores, reversibly", () => {
    const node = "ip-10-0-0-1.ec2.internal";
    expect(nodeToken(node)).toBe("ip-10-0-0-1_ec2_internal");
    expect(nodeFromToken(nodeToken(node))).toBe(node);
    expect(agentSubject(node)).toBe("ovntap.v1.agents.ip-10-0-0-1_ec2_internal");
    expect(() => nodeToken("node_1")).toThrow(SubjectTokenError);
  });

  it("grants a namespace exactly its subjects", () => {
    expect(namespaceSubjects("shop")).toEqual({
      req: "ovntap.v1.req.shop",
      events: "ovntap.v1.events.shop.>",
      capture: "ovntap.v1.capture.shop.>",
      flows: "ovntap.v1.flows.shop.>",
      stats: "ovntap.v1.stats.shop.>",
    });
  });
});

describe("parseSubject", () => {
  it("inverts every builder", () => {
    expect(parseSubject(reqSubject("shop"))).toEqual({ kind: "req", namespace: "shop" });
    expect(parseSubject(eventSubject("shop", "web"))).toEqual({
      kind: "events",
      namespace: "shop",
      mirror: "web",
    });
    expect(parseSubject(captureSubject("shop", "web", "a.b"))).toEqual({
      kind: "capture",
      namespace: "shop",
      mirror: "web",
      node: "a.b",
    });
    expect(parseSubject(unknownCaptureSubject("n1"))).toEqual({ kind: "captureUnknown", node: "n1" });
    expect(parseSubject(flowSubject("shop", "web"))).toEqual({
      kind: "flows",
      namespace: "shop",
      mirror: "web",
    });
    expect(parseSubject(statsSubject("shop", "web"))).toEqual({
      kind: "stats",
      namespace: "shop",
      mirror: "web",
    });
    expect(parseSubject(agentSubject("n1.x"))).toEqual({ kind: "agent", node: "n1.x" });
  });

  it("rejects what the builders never produce", () => {
    for (const s of [
      "ovntap.v2.req.shop",
      "ovntap.v1.req",
      "ovntap.v1.req.shop.extra",
      "ovntap.v1.req.Shop",
      "ovntap.v1.events.shop",
      "ovntap.v1.capture.shop.web",
      "ovntap.v1.nope.shop",
      "other.v1.req.shop",
    ]) {
      expect(parseSubject(s), s).toBeUndefined();
    }
  });
});
