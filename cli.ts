/**
 * The command line: `deno task cli <command>`, working directly on the KV in `CHORUS_KV` (a file,
 * or a KV Connect URL), so it works with or without a running server.
 *
 *   status | members
 *   token create --scopes kv:read,kv:write [--prefix P] [--ttl SECONDS] [--name N]
 *   token list | token revoke <id>
 *   backup create [--dir D] | backup list [--dir D] | backup verify <file>
 *   backup restore <file> [--force] | backup cleanup [--dir D] [--keep N]
 * @module
 */
import { parseArgs } from "node:util";
import { ulid } from "ulid";
import { loadConfig } from "./config.ts";
import { Store } from "./storage/store.ts";
import { openKv } from "./storage/open.ts";
import { Members } from "./storage/members.ts";
import { TokenStore } from "./auth/tokens.ts";
import { systemClock } from "./clock.ts";
import { ChorusError } from "./errors.ts";
import { createBackup, restoreBackup, storeIsEmpty, verifyBackup } from "./storage/backup.ts";

const USAGE = `usage: deno task cli <command>
  status | members
  token create --scopes kv:read,kv:write [--prefix P] [--ttl SECONDS] [--name N]
  token list | token revoke <id>
  backup create [--dir D] | backup list [--dir D] | backup verify <file>
  backup restore <file> [--force] | backup cleanup [--dir D] [--keep N]`;

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
  const config = loadConfig(env);
  const kv = await openKv(config.kvPath);
  const store = new Store(kv);
  const backupDir = values.dir ?? config.backupDir;
  try {
    switch (`${command} ${sub ?? ""}`.trim()) {
      case "status":
      case "members": {
        const members = await new Members(store, systemClock, {
          id: "cli",
          region: config.region,
          pid: Deno.pid,
          started_at: 0,
        }).list();
        print(command === "members" ? members : { kv: config.kvPath ?? "default", members });
        return 0;
      }
      case "token create": {
        const tokens = new TokenStore(store, systemClock);
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
        print(await new TokenStore(store, systemClock).list());
        return 0;
      case "token revoke":
        if (!arg) throw new ChorusError("invalid_request", "Cannot revoke: give a token id");
        await new TokenStore(store, systemClock).revoke(arg);
        print({ deleted: true, id: arg });
        return 0;
      case "backup create": {
        await Deno.mkdir(backupDir, { recursive: true });
        const bytes = await createBackup(store, `cli-${Deno.hostname()}`);
        const file = `${backupDir}/chorus-${ulid()}.backup.gz`;
        await Deno.writeFile(file, bytes);
        print({ file, bytes: bytes.byteLength, ...(await verifyBackup(bytes)).header });
        return 0;
      }
      case "backup list": {
        const files: { file: string; bytes: number }[] = [];
        try {
          for await (const e of Deno.readDir(backupDir)) {
            if (e.isFile && e.name.endsWith(".backup.gz")) {
              const file = `${backupDir}/${e.name}`;
              files.push({ file, bytes: (await Deno.stat(file)).size });
            }
          }
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        print(files.sort((a, b) => a.file.localeCompare(b.file)));
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
        if (!values.force && !(await storeIsEmpty(store))) {
          const answer = prompt(
            `KV ${config.kvPath} is not empty; restoring overwrites its keys. Continue? [y/N]`,
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
        const names: string[] = [];
        try {
          for await (const e of Deno.readDir(backupDir)) {
            if (e.isFile && e.name.endsWith(".backup.gz")) names.push(e.name);
          }
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        const remove = names.sort().slice(0, Math.max(0, names.length - keep));
        for (const n of remove) await Deno.remove(`${backupDir}/${n}`);
        print({ removed: remove.length, kept: names.length - remove.length });
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
    kv.close();
  }
}

if (import.meta.main) Deno.exit(await runCli(Deno.args, Deno.env.toObject()));
