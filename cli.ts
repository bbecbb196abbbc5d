/**
 * The command line: `deno task cli <command>`, working directly on the KV given by `--kv` or
 * `CHORUS_KV` (a file, or a KV Connect URL), so it works with or without a running server. A
 * command that opens the store says which on stderr (`chorus: opened KV at <path>`).
 *
 *   status | members
 *   token create --scopes kv:read,kv:write [--prefix P] [--ttl SECONDS] [--name N]
 *   token list | token revoke <id>
 *   backup create [--dir D] | backup list [--dir D] | backup verify <file>
 *   backup restore <file> [--force] | backup cleanup [--dir D] [--keep N] [--keep-days D]
 *   every command: [--kv PATH]
 * @module
 */
import { parseArgs } from "node:util";
import { decodeTime } from "ulid";
import { newUlid } from "./random.ts";
import { ConfigError, isKvConnect, loadConfig } from "./config.ts";
import { Store } from "./storage/store.ts";
import { openKv } from "./storage/open.ts";
import { Members } from "./storage/members.ts";
import { TokenStore } from "./auth/tokens.ts";
import { systemClock } from "./clock.ts";
import { ChorusError } from "./errors.ts";
import { createBackup, restoreBackup, storeIsEmpty, verifyBackup } from "./storage/backup.ts";

const USAGE = `usage: deno task cli [--kv PATH] <command>
  status | members
  token create --scopes kv:read,kv:write [--prefix P] [--ttl SECONDS] [--name N]
  token list | token revoke <id>
  backup create [--dir D] | backup list [--dir D] | backup verify <file>
  backup restore <file> [--force] | backup cleanup [--dir D] [--keep N] [--keep-days D]
--kv PATH: the KV file or KV Connect URL (default CHORUS_KV, else ./data/chorus.kv)
backup cleanup keeps the N newest backups (default 5) and, with --keep-days, every backup made
in the last D days; it removes the others.`;

function print(value: unknown): void {
  console.log(typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

/** Reports a command line that cannot run as given; exit code 2, as for an unknown command. */
function usageError(message: string): number {
  console.error(`chorus: ${message}\n${USAGE}`);
  return 2;
}

/** `--keep N` of `backup cleanup`: a whole number of backups, 5 when not given. */
function parseKeep(value: string | undefined): number | undefined {
  if (value === undefined) return 5;
  return /^\d+$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : undefined;
}

/** `--keep-days D` of `backup cleanup`: a non-negative number of days, null when not given. */
function parseKeepDays(value: string | undefined): number | null | undefined {
  if (value === undefined) return null;
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : undefined;
}

/** A backup file in the backup folder. */
interface BackupFile {
  name: string;
  file: string;
  bytes: number;
  /** When it was made: the time of its ULID name, else the file's modification time. */
  madeAt: number;
}

/** The `*.backup.gz` files of `dir`, oldest first (names are ULIDs, so they sort by time). */
async function backupFiles(dir: string): Promise<BackupFile[]> {
  const out: BackupFile[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".backup.gz")) continue;
      const file = `${dir}/${e.name}`;
      const stat = await Deno.stat(file);
      let madeAt = stat.mtime?.getTime() ?? 0;
      const id = /^chorus-([0-9A-HJKMNP-TV-Z]{26})\.backup\.gz$/.exec(e.name)?.[1];
      if (id) {
        try {
          madeAt = decodeTime(id);
        } catch {
          // not a ULID after all: the modification time stands
        }
      }
      out.push({ name: e.name, file, bytes: stat.size, madeAt });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Figures of the store: entries and the bytes of their keys and values (as stored) per top-level
 * namespace, and the size of the KV file on disk. Reads every entry once.
 */
async function storageFigures(store: Store, path: string | undefined) {
  const namespaces: Record<string, { entries: number; bytes: number }> = {};
  let entries = 0, bytes = 0;
  for await (const entry of store.list({ prefix: [] })) {
    const size = sizeOf(entry.key) + sizeOf(entry.value);
    const ns = namespaces[String(entry.key[0])] ??= { entries: 0, bytes: 0 };
    ns.entries++;
    ns.bytes += size;
    entries++;
    bytes += size;
  }
  let fileBytes: number | null = null;
  if (path && path !== ":memory:" && !isKvConnect(path)) {
    fileBytes = 0;
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        fileBytes += (await Deno.stat(path + suffix)).size;
      } catch {
        // no such part
      }
    }
  }
  return { entries, bytes, file_bytes: fileBytes, namespaces };
}

/** About how many bytes KV stores for a key or value. */
function sizeOf(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === "string") return value.length;
  if (typeof value === "number" || typeof value === "bigint") return 8;
  if (value instanceof Deno.KvU64) return 8;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + sizeOf(v), 0);
  if (value !== null && typeof value === "object") {
    let n = 0;
    for (const [k, v] of Object.entries(value)) n += k.length + sizeOf(v);
    return n;
  }
  return 1;
}

/**
 * Opens a backup file for reading as a stream, so it is never held whole.
 * @throws {ChorusError} `not_found` when there is no such file, `invalid_request` for a directory
 */
async function openBackup(path: string, action: string): Promise<Deno.FsFile> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ChorusError("not_found", `Cannot ${action} "${path}": no such file`);
    }
    throw e;
  }
  if (!(await file.stat()).isFile) {
    file.close();
    throw new ChorusError("invalid_request", `Cannot ${action} "${path}": not a file`);
  }
  return file;
}

/** Runs one CLI command; returns the exit code. */
export async function runCli(argv: string[], env: Record<string, string | undefined>) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        scopes: { type: "string" },
        prefix: { type: "string" },
        ttl: { type: "string" },
        name: { type: "string" },
        dir: { type: "string" },
        keep: { type: "string" },
        "keep-days": { type: "string" },
        kv: { type: "string" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    // An unknown option or one missing its value (`--keep -1` reads as an option): a usage error.
    return usageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, sub, arg] = positionals;
  if (values.help || !command) {
    print(USAGE);
    return command ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig(values.kv === undefined ? env : { ...env, CHORUS_KV: values.kv });
  } catch (e) {
    if (e instanceof ConfigError) return usageError(e.message);
    throw e;
  }
  const kvPath = config.kvPath;
  const backupDir = values.dir ?? config.backupDir;
  let kv: Deno.Kv | undefined;
  /** Opens the store on first use and says which on stderr. */
  const open = async (): Promise<Store> => {
    if (!kv) {
      try {
        kv = await openKv(kvPath);
      } catch (e) {
        throw new ChorusError(
          "unavailable",
          `Cannot open KV at ${kvPath ?? "the platform default"}: ${(e as Error).message}`,
        );
      }
      console.error(`chorus: opened KV at ${kvPath ?? "the platform default"}`);
    }
    return new Store(kv);
  };
  try {
    switch (`${command} ${sub ?? ""}`.trim()) {
      case "status":
      case "members": {
        const store = await open();
        const members = await new Members(store, systemClock, {
          id: "cli",
          region: config.region,
          pid: Deno.pid,
          started_at: 0,
        }).list();
        if (command === "members") print(members);
        else {
          print({
            kv: kvPath ?? "default",
            storage: await storageFigures(store, kvPath),
            members,
          });
        }
        return 0;
      }
      case "token create": {
        const tokens = new TokenStore(await open(), systemClock);
        const { token, info } = await tokens.create({
          scopes: (values.scopes ?? "").split(",").map((s) => s.trim()).filter(Boolean) as never,
          prefix: values.prefix,
          ttl: values.ttl === undefined ? undefined : Number(values.ttl),
          name: values.name,
        });
        print({ ...info, token });
        console.error("The token is shown once; store it now.");
        return 0;
      }
      case "token list":
        print(await new TokenStore(await open(), systemClock).list());
        return 0;
      case "token revoke":
        if (!arg) throw new ChorusError("invalid_request", "Cannot revoke: give a token id");
        await new TokenStore(await open(), systemClock).revoke(arg);
        print({ deleted: true, id: arg });
        return 0;
      case "backup create": {
        const store = await open();
        await Deno.mkdir(backupDir, { recursive: true });
        const bytes = await createBackup(store, `cli-${Deno.hostname()}`);
        const file = `${backupDir}/chorus-${newUlid()}.backup.gz`;
        await Deno.writeFile(file, bytes);
        const check = await verifyBackup(bytes);
        print({ file, bytes: bytes.byteLength, ...check.header, sha256: check.sha256 });
        return 0;
      }
      case "backup list": {
        // Each file is read through (streamed) for its header and checksum.
        const listed = [];
        for (const f of await backupFiles(backupDir)) {
          const backup = await openBackup(f.file, "list");
          let check;
          try {
            check = await verifyBackup(backup.readable);
          } finally {
            try {
              backup.close();
            } catch {
              // already closed by reading it through
            }
          }
          listed.push({
            file: f.file,
            created_at: check.header ? new Date(check.header.created_at).toISOString() : null,
            entries: check.header?.entries ?? null,
            bytes: f.bytes,
            sha256: check.sha256 ?? null,
            ...(check.ok ? {} : { ok: false, reason: check.reason }),
          });
        }
        print(listed);
        return 0;
      }
      case "backup verify": {
        if (!arg) throw new ChorusError("invalid_request", "Cannot verify: give a backup file");
        // Read as a stream within the limits: a hostile file is a failed check, not a crash.
        const check = await verifyBackup((await openBackup(arg, "verify")).readable);
        print(check);
        if (!check.ok) console.error(`chorus: Cannot verify "${arg}": ${check.reason}`);
        return check.ok ? 0 : 1;
      }
      case "backup restore": {
        if (!arg) throw new ChorusError("invalid_request", "Cannot restore: give a backup file");
        // Restore reads the file twice (verify everything, then write), so it is held in memory.
        const file = await openBackup(arg, "restore");
        const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
        const store = await open();
        if (!values.force && !(await storeIsEmpty(store))) {
          const answer = prompt(
            `KV ${kvPath} is not empty; restoring overwrites its keys. Continue? [y/N]`,
          );
          if (!/^y(es)?$/i.test(answer ?? "")) {
            console.error("Not restored.");
            return 1;
          }
        }
        print({ restored: await restoreBackup(store, bytes) });
        return 0;
      }
      case "backup cleanup": {
        const keep = parseKeep(values.keep);
        if (keep === undefined) {
          return usageError(`--keep must be a whole number of backups, not "${values.keep}"`);
        }
        const keepDays = parseKeepDays(values["keep-days"]);
        if (keepDays === undefined) {
          return usageError(`--keep-days must be a number of days, not "${values["keep-days"]}"`);
        }
        const files = await backupFiles(backupDir);
        const since = keepDays === null ? Infinity : Date.now() - keepDays * 86_400_000;
        const remove = files.slice(0, Math.max(0, files.length - keep))
          .filter((f) => f.madeAt < since);
        for (const f of remove) await Deno.remove(f.file);
        print({ removed: remove.length, kept: files.length - remove.length });
        return 0;
      }
      default:
        print(USAGE);
        return 2;
    }
  } catch (e) {
    if (e instanceof ChorusError) {
      console.error(`chorus: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    kv?.close();
  }
}

if (import.meta.main) Deno.exit(await runCli(Deno.args, Deno.env.toObject()));
