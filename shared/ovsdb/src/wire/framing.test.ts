import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../errors.js";
import { JsonStreamParser } from "./framing.js";

function parseAll(chunks: (string | Buffer)[]): unknown[] {
  const out: unknown[] = [];
  const p = new JsonStreamParser((v) => out.push(v));
  for (const c of chunks) p.push(typeof c === "string" ? Buffer.from(c) : c);
  p.end();
  return out;
}

/** Serialises values back to back; bare literals need a separator from their neighbours. */
function serialize(values: unknown[], gaps: string[]): string {
  let s = "";
  values.forEach((v, i) => {
    const text = JSON.stringify(v);
    const prev = values[i - 1];
    const bare = (x: unknown) => x === null || typeof x === "number" || typeof x === "boolean";
    const gap = gaps[i] ?? "";
    s += i > 0 && gap === "" && bare(prev) && bare(v) ? " " : gap;
    s += text;
  });
  return s;
}

/** Splits a buffer at the given (sorted, deduplicated) byte offsets. */
function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

describe("JsonStreamParser", () => {
  it("splits concatenated JSON-RPC messages with no delimiter", () => {
    const msgs = [
      { id: null, method: "update2", params: ["m", { T: {} }] },
      { id: 1, result: [{ uuid: ["uuid", "x"] }], error: null },
    ];
    expect(parseAll([msgs.map((m) => JSON.stringify(m)).join("")])).toEqual(msgs);
  });

  it("handles braces, brackets and escaped quotes inside strings", () => {
    const v = { s: 'a}b]c{d["e\\"f\\\\', t: ["\\", '"', "}"] };
    const text = JSON.stringify(v) + JSON.stringify(v);
    for (let i = 0; i <= text.length; i++) {
      expect(parseAll([text.slice(0, i), text.slice(i)])).toEqual([v, v]);
    }
  });

  it("reassembles a multi-byte UTF-8 character split across chunks", () => {
    const buf = Buffer.from(JSON.stringify({ name: "mirror-é€😀" }));
    for (let i = 0; i <= buf.length; i++) {
      expect(parseAll([buf.subarray(0, i), buf.subarray(i)])).toEqual([{ name: "mirror-é€😀" }]);
    }
  });

  it("parses a large message fed one small chunk at a time", () => {
    const rows: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) rows[`uuid-${i}`] = { initial: { name: `port-${i}`, tag: i, ok: true } };
    const buf = Buffer.from(JSON.stringify({ id: 7, result: rows, error: null }));
    expect(buf.length).toBeGreaterThan(200_000);
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 1000) chunks.push(buf.subarray(i, i + 1000));
    const [msg] = parseAll(chunks) as [{ result: Record<string, unknown> }];
    expect(Object.keys(msg.result)).toHaveLength(5000);
  });

  it("scans a string full of escapes in linear time", () => {
    const s = "\\".repeat(200_000) + '\\"';
    const buf = Buffer.from(JSON.stringify({ s }));
    const started = Date.now();
    expect(parseAll([buf])).toEqual([{ s }]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("completes bare literals at the next delimiter or at end()", () => {
    expect(parseAll(["1 2", " tr", "ue", "[3]null"])).toEqual([1, 2, true, [3], null]);
    expect(parseAll(["12", "34"])).toEqual([1234]);
  });

  it("skips whitespace between values", () => {
    expect(parseAll([" \n{}\r\n\t[] "])).toEqual([{}, []]);
  });

  it("rejects a stray closing bracket and invalid JSON", () => {
    expect(() => parseAll(["}"])).toThrow(ProtocolError);
    expect(() => parseAll(["{'a':1}"])).toThrow(ProtocolError);
    expect(() => parseAll(['{"a":}'])).toThrow(ProtocolError);
  });

  it("reports a value cut off by the end of the stream", () => {
    expect(() => parseAll(['{"a":'])).toThrow(/stream ended inside a JSON value/);
  });

  it("refuses values above maxValueBytes", () => {
    const p = new JsonStreamParser(() => {}, { maxValueBytes: 10 });
    expect(() => p.push(Buffer.from('{"a":"0123456789"'))).toThrow(/exceeds 10 bytes/);
  });

  it("property: any sequence of JSON values, split anywhere, parses back to the same sequence", () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 4 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.constantFrom("", "", " ", "\n", "\r\n\t"), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (values, gaps, cuts) => {
          // JSON.stringify turns -0 into 0; compare what JSON can carry.
          const expected = values.map((v) => JSON.parse(JSON.stringify(v)) as unknown);
          const buf = Buffer.from(serialize(values, gaps));
          expect(parseAll(splitAt(buf, cuts))).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("property: one byte at a time works as well as all at once", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 4 }), (values) => {
        const buf = Buffer.from(serialize(values, []));
        const bytes = [...buf].map((b) => Buffer.from([b]));
        expect(parseAll(bytes)).toEqual(parseAll([buf]));
      }),
      { numRuns: 200 },
    );
  });
});
