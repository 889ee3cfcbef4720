#!/usr/bin/env -S npx tsx
// bootfarm CLI. `serve` runs the server; the other commands talk to a running server's admin API
// (BOOTFARM_URL, default http://127.0.0.1:8080; BOOTFARM_TOKEN, default the admin token in the data dir).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startServer } from './main.ts';
import { FIRMWARE_USAGE, runFirmware } from './cli/firmware.ts';
import { FLEET_USAGE, runFleet } from './cli/fleet.ts';
import { IMAGE_USAGE, ImageCliError, runImageCommand } from './cli/image.ts';
import { createHttp, type ApiClient } from './cli/http.ts';

const USAGE = `usage: bootfarm <command> [options]
  serve                          run the boot server (config: BOOTFARM_CONFIG file + BOOTFARM_* env)
  nodes list [--state S] [--label k=v] [--json]
  nodes show UUID [--json]
  nodes events UUID [--json]
  nodes action UUID ACTION [--reason TEXT]   (maintenance-on|maintenance-off|rebuild|retire|fail|quarantine)
  nodes power UUID on|off|cycle|reset|soft|status [--bootdev pxe|disk]   (through the node's BMC)
${FLEET_USAGE}
${FIRMWARE_USAGE}
${IMAGE_USAGE}
options: --url URL (BOOTFARM_URL)  --token TOKEN (BOOTFARM_TOKEN)  --json`;

export class CliError extends Error {}

export type { ApiClient };

export function apiClient(url: string, token: string | undefined, fetchImpl: typeof fetch = fetch): ApiClient {
  const call = createHttp({ url, token, fetchImpl, fail: (m) => new CliError(m) });
  return { get: (p) => call('GET', p), post: (p, b) => call('POST', p, b) };
}

function defaultToken(): string | undefined {
  if (process.env.BOOTFARM_TOKEN) return process.env.BOOTFARM_TOKEN;
  try {
    return readFileSync(join(process.env.BOOTFARM_DATA_DIR ?? 'var', 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

type Out = (line: string) => void;

export async function runNodes(args: string[], opts: { json: boolean; api: ApiClient; out: Out; state?: string; label?: string; reason?: string; bootdev?: string }) {
  const [sub, uuid, action] = args;
  const { api, out } = opts;
  if (sub === 'list') {
    const qs = new URLSearchParams();
    if (opts.state) qs.set('state', opts.state);
    if (opts.label) qs.set('label', opts.label);
    const res = (await api.get(`/api/v1/nodes${qs.size ? `?${qs}` : ''}`)) as { nodes: Record<string, unknown>[] };
    if (opts.json) return out(JSON.stringify(res.nodes, null, 2));
    out(`${pad('UUID', 38)}${pad('STATE', 18)}${pad('SERIAL', 16)}${pad('PRODUCT', 24)}LAST SEEN`);
    for (const n of res.nodes) out(`${pad(n.uuid, 38)}${pad(n.state, 18)}${pad(n.serial, 16)}${pad(n.product, 24)}${n.lastSeen ?? '-'}`);
    return;
  }
  if (!uuid) throw new CliError(`nodes ${sub ?? ''}: a node UUID is required\n${USAGE}`);
  if (sub === 'show') {
    const res = (await api.get(`/api/v1/nodes/${encodeURIComponent(uuid)}`)) as { node: Record<string, unknown>; interfaces: Record<string, unknown>[]; conflicts: Record<string, unknown>[] };
    if (opts.json) return out(JSON.stringify(res, null, 2));
    const n = res.node;
    for (const k of ['uuid', 'state', 'stateReason', 'stateSince', 'serial', 'manufacturer', 'product', 'profile', 'imageName', 'imageVersion', 'lastHeartbeat', 'rebuildAttempts']) out(`${pad(k, 18)}${typeof n[k] === 'object' ? JSON.stringify(n[k]) : (n[k] ?? '-')}`);
    out(`${pad('labels', 18)}${JSON.stringify(n.labels)}`);
    for (const i of res.interfaces) out(`${pad('interface', 18)}${i.mac} ${i.name ?? ''} switch=${i.switchName ?? '-'} port=${i.switchPortDescription ?? i.switchPort ?? '-'}`);
    for (const c of res.conflicts) out(`${pad('CONFLICT', 18)}${c.kind} ${c.value} also claimed by ${c.otherUuid}`);
    return;
  }
  if (sub === 'events') {
    const res = (await api.get(`/api/v1/nodes/${encodeURIComponent(uuid)}/events`)) as { events: Record<string, unknown>[] };
    if (opts.json) return out(JSON.stringify(res.events, null, 2));
    for (const e of res.events) out(`${e.at}  ${pad(e.kind, 11)}${e.fromState || e.toState ? pad(`${e.fromState ?? '∅'} → ${e.toState}`, 30) : pad('', 30)}${pad(e.actor, 16)}${e.reason ?? ''}`);
    return;
  }
  if (sub === 'action') {
    if (!action) throw new CliError('nodes action: an action is required (maintenance-on|maintenance-off|rebuild|retire|fail|quarantine)');
    const res = (await api.post(`/api/v1/nodes/${encodeURIComponent(uuid)}/actions`, { action, ...(opts.reason ? { reason: opts.reason } : {}) })) as { node: Record<string, unknown> };
    return out(opts.json ? JSON.stringify(res.node, null, 2) : `${uuid}: ${res.node.state}`);
  }
  if (sub === 'power') {
    if (!action) throw new CliError('nodes power: an action is required (on|off|cycle|reset|soft|status)');
    const path = `/api/v1/nodes/${encodeURIComponent(uuid)}/power`;
    const res = (action === 'status' ? await api.get(path) : await api.post(path, { action, ...(opts.bootdev ? { bootdev: opts.bootdev } : {}) })) as { power: string; action?: string };
    return out(opts.json ? JSON.stringify(res, null, 2) : `${uuid}: power ${res.power}${res.action ? ` (${res.action})` : ''}`);
  }
  throw new CliError(`unknown nodes command "${sub}"\n${USAGE}`);
}

export async function main(argv: string[], out: Out = (l) => console.log(l)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' }, state: { type: 'string' }, label: { type: 'string' }, reason: { type: 'string' }, bootdev: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: false,
  });
  const [cmd, ...rest] = positionals;
  if (!cmd || values.help) {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === 'serve') {
    const config = loadConfig();
    const log = createLogger({ level: config.log.level });
    const running = await startServer(config, { log });
    const shutdown = async (sig: string) => {
      log.info({ sig }, 'shutting down');
      await running.stop();
      process.exit(0);
    };
    process.once('SIGINT', () => void shutdown('SIGINT'));
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    return -1; // keep running
  }
  const url = String(values.url ?? process.env.BOOTFARM_URL ?? 'http://127.0.0.1:8080');
  const token = (values.token as string | undefined) ?? defaultToken();
  if (cmd === 'image') return runImageCommand(argv.slice(argv.indexOf('image') + 1), { url, token, out, progress: process.stderr });
  const api = apiClient(url, token);
  if (cmd === 'nodes') {
    await runNodes(rest, { json: !!values.json, api, out, state: values.state as string | undefined, label: values.label as string | undefined, reason: values.reason as string | undefined, bootdev: values.bootdev as string | undefined });
    return 0;
  }
  if (cmd === 'fleet') {
    await runFleet(rest, { api, out, json: !!values.json, reason: values.reason as string | undefined, fail: (m) => new CliError(m) });
    return 0;
  }
  if (cmd === 'firmware') {
    await runFirmware(rest, { api, out, json: !!values.json, fail: (m) => new CliError(m) });
    return 0;
  }
  throw new CliError(`unknown command "${cmd}"\n${USAGE}`);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('server/cli.ts')) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err) => {
      if (err instanceof ConfigError || err instanceof CliError || err instanceof ImageCliError) {
        console.error(`bootfarm: ${err.message}`);
        process.exit(2);
      }
      console.error(err);
      process.exit(1);
    },
  );
}
