/**
 * A plan as ONE OVSDB transaction (RFC 7047 §4.1.3: all of it or nothing):
 *
 *   [key guards (wait)] [Mirror inserts/updates] [LSP detaches] [LSP attaches]
 *   [stale Mirror deletes] [NB_Global nb_cfg += 1] [select nb_cfg] [comment]
 *
 * Guards come first so that a failed operation index below `guards` means "a concurrent
 * writer changed the keys towards a sink": re-read and try again. Updates and deletes are
 * conditioned on the row still naming its owner (`external_ids includes`), so even a stale
 * cache can never make ovntap touch a row that is not its own.
 */
import { nbOp, type Operation } from "@ovntap/ovsdb";
import type { NbMirror } from "@ovntap/ovsdb";
import { OWNER_KEY } from "./names.js";
import type { Plan, PlannedRow } from "./plan.js";

export interface PlannedTransaction {
  readonly ops: Operation[];
  /** Operations [0, guards) are key guards. */
  readonly guards: number;
  /** Index of each inserted row's result, by row name. */
  readonly inserts: ReadonlyMap<string, number>;
  /** Index of the `select NB_Global nb_cfg` result, when the transaction bumps nb_cfg. */
  readonly select: number | undefined;
}

// The generated row types follow the pinned 23.03 schema; the live schema was checked by
// resolveSpec (capabilities), so a newer filter/type value is legitimate here.
type Filter = NbMirror["filter"];
type MirrorType = NbMirror["type"];

function rowValue(r: PlannedRow) {
  return {
    name: r.name,
    filter: r.filter as Filter,
    sink: r.sink,
    type: r.type as MirrorType,
    index: r.index,
    external_ids: r.externalIds,
  };
}

export function planOperations(plan: Plan, options: { bumpNbCfg?: boolean } = {}): PlannedTransaction {
  const ops: Operation[] = [];
  const owned = ["external_ids", "includes", { [OWNER_KEY]: plan.id }] as const;
  for (const g of plan.guards) {
    ops.push(nbOp.wait("Mirror", [["sink", "==", g.sink]], ["name", "index"], "==", g.rows, 0));
  }
  const guards = ops.length;
  const inserts = new Map<string, number>();
  for (const r of plan.rows) {
    if (r.action === "create") {
      inserts.set(r.name, ops.length);
      ops.push(nbOp.insert("Mirror", rowValue(r), r.ref));
    } else if (r.action === "update" && r.uuid) {
      ops.push(nbOp.update("Mirror", [["_uuid", "==", r.uuid], owned], rowValue(r)));
    }
  }
  for (const d of plan.detach) {
    ops.push(
      nbOp.mutate(
        "Logical_Switch_Port",
        [["_uuid", "==", d.port._uuid]],
        [["mirror_rules", "delete", d.uuids]],
      ),
    );
  }
  for (const a of plan.attach) {
    ops.push(
      nbOp.mutate(
        "Logical_Switch_Port",
        [["_uuid", "==", a.port._uuid]],
        [["mirror_rules", "insert", a.refs]],
      ),
    );
  }
  for (const r of plan.deletes) {
    ops.push(nbOp.delete("Mirror", [["_uuid", "==", r._uuid], owned]));
  }
  let select: number | undefined;
  if (options.bumpNbCfg !== false) {
    // What `ovn-nbctl --wait=hv` does: bump nb_cfg with the change, then wait for
    // hv_cfg to reach it (ovn-nb(5) NB_Global). The select returns the value we set.
    ops.push(nbOp.mutate("NB_Global", [], [["nb_cfg", "+=", 1]]));
    select = ops.length;
    ops.push(nbOp.select("NB_Global", [], ["nb_cfg"]));
  }
  ops.push(
    nbOp.comment(
      `ovntap: reconcile ${plan.id}${plan.generation ? ` generation ${plan.generation}` : " removal"}`,
    ),
  );
  return { ops, guards, inserts, select };
}
