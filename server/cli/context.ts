// What every command area gets from server/cli.ts: where to print, the admin API client built from the global
// options (--url/--token/--ca, or BOOTFARM_URL/BOOTFARM_TOKEN/BOOTFARM_CA), and the CLI's error type. Lives apart
// from server/cli.ts so the area files (server/cli/*.ts) never import the entry point (no import cycles).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { createHttp, createTextStream, type ApiClient, type Call, type Fail } from './http.ts';

/** A mistake the operator can fix (bad usage, bad config, an API error answer): printed without a stack
 * trace, exit code 2. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export type Out = (line: string) => void;

/** Progress output (stderr). `isTTY` decides between a redrawn bar and one line per 10 %. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface GlobalOptions {
  url: string;
  token?: string;
  /** PEM CA bundle that signs the admin listener's certificate (in addition to the system's) */
  ca?: string;
  json: boolean;
}

export interface CliContext {
  /** stdout, one line per call */
  out: Out;
  /** stderr progress and notes */
  progress: ProgressStream;
  /** the global options as parsed (call inside an action: they are parsed by then) */
  globals(): GlobalOptions;
  /** the admin API as a JSON client */
  api(): ApiClient;
  /** the lower-level caller (raw bodies, extra headers); errors carry status and body */
  http(): Call;
  /** GET a text body as it arrives (a followed console) */
  stream(path: string, onText: (text: string) => void): Promise<void>;
  fail: (message: string) => CliError;
  /** set by `serve`: main() must not exit when the command's action returns */
  keepRunning: boolean;
  /** the environment the configuration is read from (commands that open the database directly: backup, restore) */
  env: Record<string, string | undefined>;
}

export interface ContextOptions {
  out?: Out;
  progress?: ProgressStream;
  env?: Record<string, string | undefined>;
  fetchImpl?: typeof fetch;
  /** a ready client (tests that drive an in-process app) instead of one built from --url/--token */
  api?: ApiClient;
  /** fixed globals (tests of one area without a program) */
  globals?: Partial<GlobalOptions>;
}

const fail: Fail = (m, status, body) => new CliError(m, status, body);

function defaultToken(env: Record<string, string | undefined>): string | undefined {
  try {
    return readFileSync(join(env.BOOTFARM_DATA_DIR ?? 'var', 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The context handed to every `register(program, ctx)`. `program` is read lazily for the global options. */
export function createContext(program: Command, o: ContextOptions = {}): CliContext {
  const env = o.env ?? process.env;
  const globals = (): GlobalOptions => {
    const v = program.opts<{ url?: string; token?: string; ca?: string; json?: boolean }>();
    const url = v.url ?? o.globals?.url ?? env.BOOTFARM_URL ?? 'http://127.0.0.1:8080';
    return {
      url,
      token: v.token ?? o.globals?.token ?? env.BOOTFARM_TOKEN ?? defaultToken(env),
      ca: v.ca ?? o.globals?.ca ?? env.BOOTFARM_CA,
      json: !!(v.json ?? o.globals?.json),
    };
  };
  const http = (): Call => {
    const g = globals();
    return createHttp({ url: g.url, token: g.token, ca: g.ca, fetchImpl: o.fetchImpl, fail });
  };
  return {
    out: o.out ?? ((l) => console.log(l)),
    progress: o.progress ?? process.stderr,
    globals,
    http,
    stream: (path, onText) => {
      const g = globals();
      return createTextStream({ url: g.url, token: g.token, ca: g.ca, fetchImpl: o.fetchImpl, fail })(path, onText);
    },
    api: () => {
      if (o.api) return o.api;
      const call = http();
      return { get: (p) => call('GET', p), post: (p, b) => call('POST', p, b), delete: (p) => call('DELETE', p) };
    },
    fail: (m) => new CliError(m),
    keepRunning: false,
    env,
  };
}

/** The root command with the project's parsing rules; every subcommand inherits them (commander copies
 * these settings to commands created with `.command()` afterwards). */
export function createProgram(io: { out: Out; err: (s: string) => void }): Command {
  return new Command('bootfarm')
    .description('Diskless boot farm: run the server, or manage a running one over its admin API')
    .option('--url <url>', 'admin API base URL (env BOOTFARM_URL; default http://127.0.0.1:8080)')
    .option('--token <token>', 'bearer token (env BOOTFARM_TOKEN; default the admin token in the data dir)')
    .option('--ca <file>', 'PEM CA bundle to verify the admin listener certificate (env BOOTFARM_CA)')
    .option('--json', 'print JSON instead of tables')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: io.err, outputError: (s, write) => write(s) })
    .exitOverride();
}

/** Runs one area's commands on their own (used by tests that drive a single area with an injected client):
 * the same parser and rules as the full CLI. Parse errors become CliError. */
export async function runArea(register: (program: Command, ctx: CliContext) => void, argv: string[], o: ContextOptions): Promise<number> {
  let errText = '';
  const program = createProgram({ out: o.out ?? ((l) => console.log(l)), err: (s) => (errText += s) });
  const ctx = createContext(program, o);
  register(program, ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      throw new CliError(errText.trim() || e.message);
    }
    throw e;
  }
  return 0;
}
