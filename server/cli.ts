#!/usr/bin/env -S npx tsx
// bootfarm CLI (commander). `serve` runs the server; the other commands talk to a running server's admin API
// (--url / BOOTFARM_URL, default http://127.0.0.1:8080; --token / BOOTFARM_TOKEN, default the admin token in the
// data dir; --ca / BOOTFARM_CA for an https admin listener signed by a private CA).
//
// Adding a command: write server/cli/<area>.ts exporting `register(program: Command, ctx: CliContext)` that
// defines `program.command('<area>')` and its subcommands (description, arguments, options, action), then add
// one line to AREAS below. Everything else comes from the program: unknown commands and options are errors with
// a suggestion (exit 2), `--help` on every command, `--json` (read it with `ctx.globals().json`), the admin API
// client (`ctx.api()`, or `ctx.http()` for raw bodies), `bootfarm completion bash|zsh`. Throw `ctx.fail(msg)`
// (a CliError) for mistakes the operator can fix: printed as `bootfarm: msg`, exit 2. Do not define
// --url/--token/--ca/--json on a subcommand: they are the program's (global) options.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import { ConfigError } from './config.ts';
import { CliError, createContext, createProgram, type CliContext, type ContextOptions, type Out } from './cli/context.ts';
import { createHttp, type ApiClient } from './cli/http.ts';
import { register as serve } from './cli/serve.ts';
import { register as nodes } from './cli/nodes.ts';
import { register as fleet } from './cli/fleet.ts';
import { register as cluster } from './cli/cluster.ts';
import { register as audit } from './cli/audit.ts';
import { register as firmware } from './cli/firmware.ts';
import { register as cabling } from './cli/cabling.ts';
import { register as ipam } from './cli/ipam.ts';
import { register as image } from './cli/image.ts';
import { register as secrets } from './cli/secrets.ts';
import { register as tokens } from './cli/tokens.ts';
import { register as completion } from './cli/completion.ts';
import { register as backup } from './cli/backup.ts';
import { register as retention } from './cli/retention.ts';
import { KekMismatchError } from './store/keyring.ts';

/** Command areas, in the order `bootfarm --help` lists them. One line per area. */
const AREAS: ((program: Command, ctx: CliContext) => void)[] = [serve, nodes, fleet, audit, firmware, cabling, ipam, image, tokens, secrets, retention, backup, completion];

export { CliError };
export type { ApiClient };

/** The admin API client with an injected fetch (tests drive an in-process app through it). */
export function apiClient(url: string, token: string | undefined, fetchImpl?: typeof fetch): ApiClient {
  const call = createHttp({ url, token, fetchImpl, fail: (m, status, body) => new CliError(m, status, body) });
  return { get: (p) => call('GET', p), post: (p, b) => call('POST', p, b), delete: (p) => call('DELETE', p) };
}

export interface MainOptions extends ContextOptions {
  /** stderr text (commander's error and help-after-error output) */
  err?: (s: string) => void;
}

/** Builds the whole command tree (also used to generate completion scripts). */
export function buildProgram(o: MainOptions = {}): { program: Command; ctx: CliContext } {
  const out: Out = o.out ?? ((l) => console.log(l));
  const program = createProgram({ out, err: o.err ?? ((s) => process.stderr.write(s)) });
  const ctx = createContext(program, { ...o, out });
  for (const register of AREAS) register(program, ctx);
  return { program, ctx };
}

/** Runs the CLI. Returns the exit code, or -1 when the command keeps running (serve). Usage mistakes (unknown
 * command or option, missing argument) return 2 after commander printed the error and a suggestion; `--help`
 * returns 0; CliError/ConfigError propagate to the caller (printed as `bootfarm: …`, exit 2). */
export async function main(argv: string[], o: MainOptions | Out = {}): Promise<number> {
  const opts = typeof o === 'function' ? { out: o } : o;
  const { program, ctx } = buildProgram(opts);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  return ctx.keepRunning ? -1 : 0;
}

/** Whether this module is the program: `tsx server/cli.ts`, `node build/dist/server/cli.js`, or the `bootfarm` bin,
 *  which npm installs as a symlink (argv[1] is the link, import.meta.url the real file). */
function isProgram(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isProgram()) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err) => {
      if (err instanceof ConfigError || err instanceof CliError || err instanceof KekMismatchError) {
        console.error(`bootfarm: ${err.message}`);
        process.exit(2);
      }
      console.error(err);
      process.exit(1);
    },
  );
}
