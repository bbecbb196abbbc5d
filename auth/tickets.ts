/**
 * Stream tickets: what a browser presents where it cannot send an `Authorization` header
 * (`EventSource`, a WebSocket URL). `POST /api/v1/tickets` trades a bearer token for a ticket
 * `tk_chorus_` + 32 random bytes, valid for {@linkcode TICKET_TTL_MS} and for one use, that carries
 * the token's scopes, prefix and user. Tickets live in KV (keyed by the SHA-256 of the ticket,
 * with `expireIn`), so any worker or instance can redeem them; redeeming is an atomic
 * check-and-delete, so a ticket opens one stream only. A ticket of a token revoked (or expired)
 * since is refused.
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Store } from "../storage/store.ts";
import type { Principal, Scope } from "./tokens.ts";
import { sha256Hex } from "./tokens.ts";

/** How long a ticket is valid: 30 s. */
export const TICKET_TTL_MS = 30_000;

const TICKET_PREFIX_TEXT = "tk_chorus_";

/** The KV key of a ticket, by the hex SHA-256 of its text. */
export function ticketKey(hash: string): [string, string] {
  return ["ticket", hash];
}

/** A ticket as stored (never its text). */
interface TicketRecord {
  token_id: string;
  scopes: Scope[];
  prefix?: string;
  user_id: string;
  expires_at: number;
}

/** A freshly issued ticket. */
export interface IssuedTicket {
  ticket: string;
  /** ms since epoch. */
  expires_at: number;
}

/** Issues and redeems tickets. */
export class TicketStore {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #live: (tokenId: string) => Promise<boolean>;

  /**
   * Tickets kept in `store`; `live` says whether the token a ticket came from is still valid
   * (not revoked, not expired) when the ticket is redeemed.
   */
  constructor(store: Store, clock: Clock, live: (tokenId: string) => Promise<boolean>) {
    this.#store = store;
    this.#clock = clock;
    this.#live = live;
  }

  /** Issues a ticket carrying `principal`'s scopes, prefix and user. */
  async issue(principal: Principal): Promise<IssuedTicket> {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const ticket = TICKET_PREFIX_TEXT +
      btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
        .replace(/=+$/, "");
    const expires_at = this.#clock.now() + TICKET_TTL_MS;
    const record: TicketRecord = {
      token_id: principal.id,
      scopes: [...principal.scopes],
      user_id: principal.userId,
      expires_at,
    };
    if (principal.prefix !== undefined) record.prefix = principal.prefix;
    await this.#store.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: ticketKey(await sha256Hex(ticket)),
        value: record,
        // KV removes it some time after; the expiry is enforced on redemption.
        expireIn: TICKET_TTL_MS,
      }],
      bytes: 256,
    });
    return { ticket, expires_at };
  }

  /**
   * Redeems a ticket: its principal, or null when it is unknown, used, expired or its token no
   * longer valid. A ticket is redeemed once, on whichever instance first asks.
   */
  async redeem(ticket: string): Promise<Principal | null> {
    if (
      typeof ticket !== "string" || !ticket.startsWith(TICKET_PREFIX_TEXT) || ticket.length > 128
    ) {
      return null;
    }
    const key = ticketKey(await sha256Hex(ticket));
    const entry = await this.#store.get<TicketRecord>(key, "strong");
    if (!entry.value || entry.versionstamp === null) return null;
    const used = await this.#store.commit({
      checks: [{ key, versionstamp: entry.versionstamp }],
      mutations: [{ type: "delete", key }],
      bytes: 128,
    });
    if (!used.ok) return null; // redeemed elsewhere first
    const record = entry.value;
    if (record.expires_at <= this.#clock.now()) return null;
    if (!(await this.#live(record.token_id))) return null;
    return {
      id: record.token_id,
      scopes: new Set(record.scopes),
      prefix: record.prefix,
      userId: record.user_id,
    };
  }

  /** Whether the token behind a redeemed ticket's principal is still valid. */
  live(principal: Principal): Promise<boolean> {
    return this.#live(principal.id);
  }
}
