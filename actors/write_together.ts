/**
 * Writes across actors: ops on several actors (the keys of a bulk kv write, a reel and the feeds
 * of its target users) applied and committed all-or-nothing. It holds the actors' mailboxes while
 * it works, so this instance never shows part of it, and drives each actor's write steps through
 * {@linkcode Actor.joint} instead of the actor's own write batch.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { backoff } from "../clock.ts";
import type { Intent, Store } from "../storage/store.ts";
import { type Actor, COMMIT_BACKOFF, type JointHooks, MAX_WRITE_ATTEMPTS } from "./actor.ts";

/** One op of {@linkcode writeTogether}: an actor and what to apply to its working copy. */
export interface JointOp<Tx> {
  /** The actor whose working copy `op` changes. */
  // deno-lint-ignore no-explicit-any
  actor: Actor<Tx, any>;
  /** Validates, then changes the working copy (throwing before it changes anything). */
  op: (tx: Tx) => unknown;
}

/**
 * Applies ops to several actors and commits them all-or-nothing: every op is applied before
 * anything is written, and one failing op fails the whole call with nothing written. The actors'
 * mailboxes are held meanwhile (in a fixed order, so two calls cannot deadlock), so no reader on
 * this instance sees part of it. When the checks and mutations fit one KV commit (100 checks on
 * Deploy and local KV) it is one atomic commit; larger sets are committed in the fewest commits
 * that fit, each retried on conflict until it lands.
 * @param store where the commits go (its `limits` decide how many commits the set needs)
 * @param ops applied in order per actor, the actors in their fixed order
 * @returns each op's result, in order
 * @throws {ChorusError} `conflict` when contention outlasts `MAX_WRITE_ATTEMPTS`; whatever an op
 *   throws
 */
export async function writeTogether<Tx>(store: Store, ops: JointOp<Tx>[]): Promise<unknown[]> {
  // deno-lint-ignore no-explicit-any
  type AnyActor = Actor<Tx, any>;
  const actors = [...new Set(ops.map((o) => o.actor))].sort((a, b) => order(a) < order(b) ? -1 : 1);
  const hooks = new Map<AnyActor, JointHooks<Tx>>(actors.map((a) => [a, a.joint()]));
  const releases: (() => void)[] = [];
  try {
    for (const actor of actors) releases.push(await hooks.get(actor)!.lock());
    const results = new Array<unknown>(ops.length);
    const apply = (actor: AnyActor) => {
      const tx = hooks.get(actor)!.begin();
      ops.forEach((o, i) => {
        if (o.actor === actor) results[i] = o.op(tx);
      });
      return tx;
    };
    const txs = new Map(actors.map((a) => [a, apply(a)]));
    // An actor whose ops changed nothing still joins the commit with a check of its head, so the
    // answers it gave (e.g. "absent") are confirmed atomically with everything else.
    const pending = (actor: AnyActor, tx: Tx): Pending<Tx> => {
      const h = hooks.get(actor)!;
      const intent = h.intent(tx);
      if (intent) return { hooks: h, actor, intent };
      return { hooks: h, actor, intent: h.headCheck(), checkOnly: true };
    };
    const all = [...txs].map(([actor, tx]) => pending(actor, tx));
    const limits = store.limits;
    let group: Pending<Tx>[] = [];
    const flush = async () => {
      let part = group;
      group = [];
      for (let attempt = 0; part.length; attempt++) {
        if (attempt >= MAX_WRITE_ATTEMPTS) {
          throw new ChorusError("conflict", "Cannot write the batch: too many concurrent writers");
        }
        const result = await store.commit(mergeIntents(part.map((p) => p.intent)));
        if (result.ok) {
          for (const p of part) {
            if (!p.checkOnly) p.hooks.adopt(txs.get(p.actor)!, result.versionstamp);
          }
          return;
        }
        for (const p of part) await p.hooks.refresh();
        part = part.map((p) => {
          const tx = apply(p.actor);
          txs.set(p.actor, tx);
          return pending(p.actor, tx);
        });
        if (attempt >= 2) await backoff(attempt, COMMIT_BACKOFF);
      }
    };
    let checks = 0, mutations = 0, bytes = 0;
    for (const p of all) {
      const i = p.intent;
      if (
        group.length && (checks + i.checks.length > limits.checks ||
          mutations + i.mutations.length > limits.mutations || bytes + i.bytes > limits.bytes)
      ) {
        await flush();
        checks = mutations = bytes = 0;
      }
      group.push(p);
      checks += i.checks.length;
      mutations += i.mutations.length;
      bytes += i.bytes;
    }
    await flush();
    return results;
  } finally {
    for (const release of releases) release();
  }
}

/** Concatenates intents into one commit, so several actors' batches land (or fail) together. */
function mergeIntents(intents: Intent[]): Intent {
  if (intents.length === 1) return intents[0];
  return {
    checks: intents.flatMap((i) => i.checks),
    mutations: intents.flatMap((i) => i.mutations),
    bytes: intents.reduce((n, i) => n + i.bytes, 0),
  };
}

/** One actor's share of a joint commit: its intent, or only a check of its head. */
interface Pending<Tx> {
  hooks: JointHooks<Tx>;
  // deno-lint-ignore no-explicit-any
  actor: Actor<Tx, any>;
  intent: Intent;
  checkOnly?: true;
}

/** The fixed order actors are locked in, so two writes across the same actors cannot deadlock. */
// deno-lint-ignore no-explicit-any
function order(actor: Actor<any, any>): string {
  return `${actor.kind}\u0000${actor.id}`;
}
