/**
 * GRE keys and ERSPAN session ids for the agent's tunnels, unique per sink.
 *
 *   const keys = new KeyAllocator({ redis, prefix: "{ovntap}", node, ovs, sb });
 *   const k = await keys.choose({ id: "shop/web", sink: "198.51.100.2", type: "gre" });
 *   await keys.release("shop/web", "198.51.100.2", k);
 *
 * OVS refuses a second tunnel to one remote with the same key (`Interface.error` "could not add
 * network device … (File exists)"), and the capture exporter tells mirrors apart by (sink, key).
 * A key is free towards a sink when no one uses it: no OVN mirror (every NB Mirror row is in SB,
 * which the agent reads), no tunnel Interface on this node (anyone's), and no claim by another
 * agent in Redis (contracts `nodeKeyClaimsKey`: `<prefix>:node-agent:keys:<sink>`, a hash
 * key → `<node> <ns>/<name>`, taken with HSETNX). The ovn-applier reads the same hash and
 * allocates no key held there; the agent reads OVN's keys from Southbound, where northd copies
 * every NB Mirror row. A mirror keeps its key while it stays free; otherwise the lowest free key from 1
 * (0 reads as "no key" to many receivers) is taken. A requested key that someone else uses is
 * KEY_IN_USE.
 */
import {
  canonicalIp,
  ERSPAN_SESSION_MAX,
  formatKeyClaim,
  GRE_KEY_MAX,
  nodeKeyClaimsKey,
  parseKeyClaim,
} from "@ovntap/contracts";
import type { Redis } from "ioredis";
import { ownerOf, parseMirrorId } from "../names.js";
import type { SbState } from "../ovn/sb.js";
import type { OvsState } from "../ovs/state.js";

export const FIRST_ALLOCATED_KEY = 1;

/** Thrown when the requested key is taken, or the space towards the sink is full. */
export class KeyError extends Error {
  override name = "KeyError";
  constructor(
    readonly code: "KEY_IN_USE" | "KEY_SPACE_EXHAUSTED",
    message: string,
  ) {
    super(message);
  }
}

const RELEASE = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end`;

const TUNNEL_TYPES = new Set(["gre", "ip6gre", "erspan", "ip6erspan", "gretap", "ip6gretap"]);

export interface KeyAllocatorOptions {
  redis: Redis;
  prefix: string;
  node: string;
  ovs: OvsState;
  sb?: SbState | undefined;
}

export interface ChooseInput {
  id: string;
  sink: string;
  type: "gre" | "erspan";
  /** A key the spec asks for. */
  requested?: number | undefined;
  /** The key the mirror used so far (kept while free). */
  current?: number | undefined;
}

export class KeyAllocator {
  constructor(private readonly o: KeyAllocatorOptions) {}

  private hash(sink: string): string {
    return nodeKeyClaimsKey(this.o.prefix, sink);
  }
  private claimant(id: string): string {
    const ref = parseMirrorId(id);
    return ref ? formatKeyClaim({ node: this.o.node, ...ref }) : `${this.o.node} ${id}`;
  }

  /** Keys towards `sink` used by anyone but `id`: SB mirrors, this node's tunnels, other agents' claims. */
  async usedBy(sink: string, id: string): Promise<Map<number, string>> {
    const used = new Map<number, string>();
    for (const m of this.o.sb?.mirrors() ?? []) {
      if (canonicalIp(m.sink) === sink) used.set(m.index, `OVN mirror ${m.name}`);
    }
    for (const i of this.o.ovs.interfaces()) {
      if (!TUNNEL_TYPES.has(i.type) || ownerOf(i) === id) continue;
      if (canonicalIp(i.options.remote_ip ?? "") !== sink) continue;
      const k = Number(i.options.key ?? "0");
      if (Number.isSafeInteger(k)) used.set(k, `OVS interface ${i.name}`);
    }
    const claims = await this.o.redis.hgetall(this.hash(sink));
    for (const [k, who] of Object.entries(claims)) {
      if (who === this.claimant(id)) continue;
      const c = parseKeyClaim(who);
      used.set(
        Number(k),
        c ? `ovntap mirror ${c.namespace}/${c.name} on node ${c.node}` : `a claim by ${who}`,
      );
    }
    return used;
  }

  /** Picks and claims a key; throws KeyError. */
  async choose(input: ChooseInput): Promise<number> {
    const max = input.type === "erspan" ? ERSPAN_SESSION_MAX : GRE_KEY_MAX;
    const what = input.type === "erspan" ? "ERSPAN session id" : "GRE key";
    for (let attempt = 0; attempt < 16; attempt++) {
      const used = await this.usedBy(input.sink, input.id);
      let key: number | undefined;
      if (input.requested !== undefined) {
        const by = used.get(input.requested);
        if (by) {
          throw new KeyError(
            "KEY_IN_USE",
            `${what} ${input.requested} is already used towards ${input.sink} by ${by}; OVS refuses a second tunnel to one sink with one key`,
          );
        }
        key = input.requested;
      } else if (input.current !== undefined && !used.has(input.current) && input.current <= max) {
        key = input.current;
      } else {
        for (let k = FIRST_ALLOCATED_KEY; k <= max; k++) {
          if (!used.has(k)) {
            key = k;
            break;
          }
        }
      }
      if (key === undefined) {
        throw new KeyError(
          "KEY_SPACE_EXHAUSTED",
          `no free ${what} towards ${input.sink} (all ${max} in use)`,
        );
      }
      const me = this.claimant(input.id);
      const won = await this.o.redis.hsetnx(this.hash(input.sink), String(key), me);
      if (won === 1 || (await this.o.redis.hget(this.hash(input.sink), String(key))) === me) {
        // Our earlier claims of other keys towards this sink are released.
        const claims = await this.o.redis.hgetall(this.hash(input.sink));
        for (const [k, who] of Object.entries(claims)) {
          if (who === me && k !== String(key)) await this.release(input.id, input.sink, Number(k));
        }
        return key;
      }
      // Another agent claimed it between our read and our write: look again.
    }
    throw new KeyError(
      "KEY_SPACE_EXHAUSTED",
      `could not claim a ${what} towards ${input.sink}: too much contention`,
    );
  }

  async release(id: string, sink: string, key: number): Promise<void> {
    await this.o.redis.eval(RELEASE, 1, this.hash(sink), String(key), this.claimant(id));
  }

  /** Releases every claim `id` holds towards `sink`. */
  async releaseAll(id: string, sink: string): Promise<void> {
    const claims = await this.o.redis.hgetall(this.hash(sink));
    for (const [k, who] of Object.entries(claims)) {
      if (who === this.claimant(id)) await this.release(id, sink, Number(k));
    }
  }
}
