/**
 * Redis key names. Every key starts with the store prefix, `{ovntap}` by default: the braces are a
 * Redis Cluster hash tag, so every key of the store hashes to one slot and each Lua script may touch
 * all of them (Redis Cluster refuses a script whose keys span slots, CROSSSLOT).
 */

export const DEFAULT_PREFIX = "{ovntap}";

/** `<namespace>/<name>`: the member stored in the id sets and the expiry zset. */
export function mirrorId(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Inverse of `mirrorId`; namespaces are DNS labels, so the first '/' splits. */
export function parseMirrorId(id: string): { namespace: string; name: string } | undefined {
  const slash = id.indexOf("/");
  if (slash <= 0 || slash === id.length - 1) return undefined;
  return { namespace: id.slice(0, slash), name: id.slice(slash + 1) };
}

export interface StoreKeys {
  readonly prefix: string;
  /** HASH: record, generation, expiresAtMs, deleting, deleteReason, status, statusGeneration, observedGeneration. */
  mirror(namespace: string, name: string): string;
  /** STRING: the last generation ever used for this name; outlives the record (see `purge`). */
  generation(namespace: string, name: string): string;
  /** SET of every mirror id. */
  readonly mirrors: string;
  /** SET of the names stored in a namespace, deleting ones included. */
  namespace(namespace: string): string;
  /** SET of the names in a namespace not being deleted: what the quota counts. */
  active(namespace: string): string;
  /** ZSET of mirror ids scored by expiresAt (ms since the epoch); deleting mirrors are not in it. */
  readonly expiries: string;
  /** HASH: hash, reply, namespace, name, generation, events, published; expires after the retention. */
  request(requestId: string): string;
}

export function storeKeys(prefix = DEFAULT_PREFIX): StoreKeys {
  return {
    prefix,
    mirror: (ns, name) => `${prefix}:mirror:${mirrorId(ns, name)}`,
    generation: (ns, name) => `${prefix}:generation:${mirrorId(ns, name)}`,
    mirrors: `${prefix}:mirrors`,
    namespace: (ns) => `${prefix}:ns:${ns}`,
    active: (ns) => `${prefix}:active:${ns}`,
    expiries: `${prefix}:expiries`,
    request: (id) => `${prefix}:request:${id}`,
  };
}
