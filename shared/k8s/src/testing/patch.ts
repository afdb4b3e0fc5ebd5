/**
 * JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902) over plain JSON values, for the fake API
 * server's PATCH. Inputs are never mutated.
 *
 *   mergePatch({ a: 1, b: { c: 2 } }, { b: { c: null, d: 3 } })   // { a: 1, b: { d: 3 } }
 *   jsonPatch({ a: [1] }, [{ op: "add", path: "/a/-", value: 2 }]) // { a: [1, 2] }
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** RFC 7386 §2: objects merge recursively, null removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return structuredClone(patch as Json);
  const out: Record<string, Json> = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class JsonPatchError extends Error {
  override name = "JsonPatchError";
  constructor(
    message: string,
    /** A failed `test` op (the API server answers 422, not 400). */
    readonly testFailed = false,
  ) {
    super(message);
  }
}

export interface JsonPatchOp {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: Json;
}

/** RFC 6901 pointer → unescaped tokens. */
function tokens(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new JsonPatchError(`JSON pointer "${pointer}" must start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: Json, toks: string[], pointer: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const t of toks.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length - 1, pointer)] as Json;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t]!;
    else throw new JsonPatchError(`path "${pointer}" does not exist`);
    if (cur === undefined) throw new JsonPatchError(`path "${pointer}" does not exist`);
  }
  return { parent: cur, key: toks[toks.length - 1]! };
}

function arrayIndex(t: string, max: number, pointer: string): number {
  if (!/^(0|[1-9]\d*)$/.test(t)) throw new JsonPatchError(`"${t}" in "${pointer}" is not an array index`);
  const i = Number(t);
  if (i > max) throw new JsonPatchError(`index ${i} in "${pointer}" is out of range`);
  return i;
}

function getAt(doc: Json, pointer: string): Json {
  let cur: Json = doc;
  for (const t of tokens(pointer)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length - 1, pointer)] as Json;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t]!;
    else throw new JsonPatchError(`path "${pointer}" does not exist`);
  }
  return cur;
}

function addAt(doc: Json, pointer: string, value: Json): Json {
  const toks = tokens(pointer);
  if (toks.length === 0) return value;
  const { parent, key } = parentOf(doc, toks, pointer);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : arrayIndex(key, parent.length, pointer);
    parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    parent[key] = value;
  } else {
    throw new JsonPatchError(`path "${pointer}": parent is not an object or array`);
  }
  return doc;
}

function removeAt(doc: Json, pointer: string): Json {
  const toks = tokens(pointer);
  if (toks.length === 0) throw new JsonPatchError("cannot remove the whole document");
  const { parent, key } = parentOf(doc, toks, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length - 1, pointer), 1);
  else if (isObject(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw new JsonPatchError(`path "${pointer}" does not exist`);
  return doc;
}

const deepEqual = (a: unknown, b: unknown): boolean =>
  JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObject(v))
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

/** RFC 6902 §4: the operations in order; any failure fails the whole patch. */
export function jsonPatch(target: unknown, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new JsonPatchError("a JSON patch must be an array of operations");
  let doc = structuredClone(target as Json);
  for (const raw of ops as JsonPatchOp[]) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw new JsonPatchError("every JSON patch operation needs string fields op and path");
    }
    switch (raw.op) {
      case "add":
        doc = addAt(doc, raw.path, structuredClone(raw.value ?? null));
        break;
      case "remove":
        doc = removeAt(doc, raw.path);
        break;
      case "replace":
        getAt(doc, raw.path);
        doc = addAt(
          tokens(raw.path).length ? removeAt(doc, raw.path) : doc,
          raw.path,
          structuredClone(raw.value ?? null),
        );
        break;
      case "move": {
        if (raw.from === undefined) throw new JsonPatchError("move needs from");
        const v = getAt(doc, raw.from);
        doc = addAt(removeAt(doc, raw.from), raw.path, v);
        break;
      }
      case "copy": {
        if (raw.from === undefined) throw new JsonPatchError("copy needs from");
        doc = addAt(doc, raw.path, structuredClone(getAt(doc, raw.from)));
        break;
      }
      case "test":
        if (!deepEqual(getAt(doc, raw.path), raw.value)) {
          throw new JsonPatchError(`test of "${raw.path}" failed`, true);
        }
        break;
      default:
        throw new JsonPatchError(`unknown JSON patch op ${JSON.stringify((raw as { op: unknown }).op)}`);
    }
  }
  return doc;
}

export { deepEqual };
