// `bootfarm nodes …`: list, show, events, lifecycle actions, BMC power, delete and bulk enrollment, over a running
// server's admin API.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Argument, InvalidArgumentError, type Command } from 'commander';
import { HypervisorCapacity } from '../contract/agent.ts';
import { describeCapacity } from '../domain/hypervisor.ts';
import { CliError, runArea, type CliContext, type ContextOptions } from './context.ts';

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);
const enc = encodeURIComponent;

export const NODE_ACTIONS = ['maintenance-on', 'maintenance-off', 'rebuild', 'retire', 'fail', 'quarantine'];
export const POWER_ACTIONS = ['on', 'off', 'cycle', 'reset', 'soft', 'nmi', 'identify', 'bmc-reset', 'status'];

export function register(program: Command, ctx: CliContext): void {
  const nodes = program.command('nodes').description('nodes: list, show, events, console, lifecycle actions, BMC power');
  const json = () => ctx.globals().json;

  nodes
    .command('list')
    .description('list nodes')
    .option('--state <state>', 'only nodes in this state')
    .option('--label <k=v>', 'only nodes with this label')
    .action(async (o: { state?: string; label?: string }) => {
      const qs = new URLSearchParams();
      if (o.state) qs.set('state', o.state);
      if (o.label) qs.set('label', o.label);
      const res = (await ctx.api().get(`/api/v1/nodes${qs.size ? `?${qs}` : ''}`)) as { nodes: Record<string, unknown>[] };
      if (json()) return ctx.out(JSON.stringify(res.nodes, null, 2));
      ctx.out(`${pad('UUID', 38)}${pad('STATE', 18)}${pad('SERIAL', 16)}${pad('PRODUCT', 24)}LAST SEEN`);
      for (const n of res.nodes) ctx.out(`${pad(n.uuid, 38)}${pad(n.state, 18)}${pad(n.serial, 16)}${pad(n.product, 24)}${n.lastSeen ?? '-'}`);
    });

  nodes
    .command('show')
    .description('a node with its interfaces, switch ports and conflicts')
    .argument('<uuid>', 'node UUID')
    .action(async (uuid: string) => {
      const res = (await ctx.api().get(`/api/v1/nodes/${enc(uuid)}`)) as { node: Record<string, unknown>; interfaces: Record<string, unknown>[]; conflicts: Record<string, unknown>[] };
      if (json()) return ctx.out(JSON.stringify(res, null, 2));
      const n = res.node;
      for (const k of ['uuid', 'state', 'stateReason', 'stateSince', 'serial', 'manufacturer', 'product', 'profile', 'imageName', 'imageVersion', 'lastHeartbeat', 'rebuildAttempts'])
        ctx.out(`${pad(k, 18)}${typeof n[k] === 'object' ? JSON.stringify(n[k]) : (n[k] ?? '-')}`);
      ctx.out(`${pad('labels', 18)}${JSON.stringify(n.labels)}`);
      const hv = HypervisorCapacity.safeParse(n.hypervisor);
      ctx.out(`${pad('hypervisor', 18)}${hv.success ? `${describeCapacity(hv.data)} (reported ${n.hypervisorAt})` : '-'}`);
      for (const i of res.interfaces) ctx.out(`${pad('interface', 18)}${i.mac} ${i.name ?? ''} switch=${i.switchName ?? '-'} port=${i.switchPortDescription ?? i.switchPort ?? '-'}`);
      for (const c of res.conflicts) ctx.out(`${pad('CONFLICT', 18)}${c.kind} ${c.value} also claimed by ${c.otherUuid}`);
    });

  nodes
    .command('events')
    .description("a node's event timeline, newest first")
    .argument('<uuid>', 'node UUID')
    .option('--limit <n>', 'events per page (default 100, at most 5000)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 5000) throw new InvalidArgumentError('a whole number from 1 to 5000');
      return n;
    })
    .option('--all', 'every event: follow nextCursor to the oldest')
    .action(async (uuid: string, o: { limit?: number; all?: boolean }) => {
      const list: Record<string, unknown>[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams({ limit: String(o.limit ?? 100), ...(cursor ? { before: cursor } : {}) });
        const res = (await ctx.api().get(`/api/v1/nodes/${enc(uuid)}/events?${q}`)) as { events: Record<string, unknown>[]; nextCursor: string | null };
        list.push(...res.events);
        cursor = o.all ? res.nextCursor : null;
      } while (cursor);
      if (json()) return ctx.out(JSON.stringify(list, null, 2));
      for (const e of list)
        ctx.out(`${e.at}  ${pad(e.kind, 11)}${e.fromState || e.toState ? pad(`${e.fromState ?? '∅'} → ${e.toState}`, 30) : pad('', 30)}${pad(e.actor, 16)}${e.reason ?? ''}`);
    });

  nodes
    .command('console')
    .description("a node's serial console as captured over IPMI SOL (the last bytes; --follow keeps printing)")
    .argument('<uuid>', 'node UUID')
    .option('--bytes <n>', 'how much of the end to print (default 65536)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of bytes, at least 1');
      return n;
    })
    .option('-f, --follow', 'keep printing new output until interrupted')
    .action(async (uuid: string, o: { bytes?: number; follow?: boolean }) => {
      const q = new URLSearchParams({ ...(o.bytes ? { bytes: String(o.bytes) } : {}), ...(o.follow ? { follow: '1' } : {}) });
      // whole lines go to out(); a partial line waits for its end (or for the stream to end)
      let partial = '';
      const take = (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const l of lines) ctx.out(l.replace(/\r$/, ''));
      };
      await ctx.stream(`/api/v1/nodes/${enc(uuid)}/console${q.size ? `?${q}` : ''}`, take);
      if (partial) ctx.out(partial.replace(/\r$/, ''));
    });

  nodes
    .command('action')
    .description('a lifecycle action')
    .argument('<uuid>', 'node UUID')
    .addArgument(new Argument('<action>', 'what to do').choices(NODE_ACTIONS))
    .option('--reason <text>', 'why (kept in the event log)')
    .action(async (uuid: string, action: string, o: { reason?: string }) => {
      const res = (await ctx.api().post(`/api/v1/nodes/${enc(uuid)}/actions`, { action, ...(o.reason ? { reason: o.reason } : {}) })) as { node: Record<string, unknown> };
      ctx.out(json() ? JSON.stringify(res.node, null, 2) : `${uuid}: ${res.node.state}`);
    });

  nodes
    .command('power')
    .description("power and board control through the node's BMC: on|off|cycle|reset (hard), soft (ACPI), nmi (diagnostic interrupt), identify (LED), bmc-reset (restart the BMC), status")
    .argument('<uuid>', 'node UUID')
    .addArgument(new Argument('<action>', 'power action').choices(POWER_ACTIONS))
    .option('--bootdev <dev>', 'next boot device (pxe|disk), with on|cycle|reset')
    .option('--seconds <n>', 'identify: how long the LED blinks (0 turns it off)', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('--seconds must be a whole number');
      return Number(v);
    })
    .action(async (uuid: string, action: string, o: { bootdev?: string; seconds?: number }) => {
      const path = `/api/v1/nodes/${enc(uuid)}/power`;
      const api = ctx.api();
      const res = (action === 'status' ? await api.get(path) : await api.post(path, { action, ...(o.bootdev ? { bootdev: o.bootdev } : {}), ...(o.seconds !== undefined ? { seconds: o.seconds } : {}) })) as { power?: string; action?: string };
      ctx.out(json() ? JSON.stringify(res, null, 2) : res.power === undefined ? `${uuid}: ${res.action} done` : `${uuid}: power ${res.power}${res.action ? ` (${res.action})` : ''}`);
    });

  nodes
    .command('delete')
    .description('forget a node: its interfaces, leases, boot attempts, credential, facts, events and BMC (admin)')
    .argument('<uuid>', 'node UUID')
    .option('--force', 'also a node that is active, provisioning, rebuilding, inspecting, updating firmware or in maintenance')
    .action(async (uuid: string, o: { force?: boolean }) => {
      const res = (await ctx.api().delete(`/api/v1/nodes/${enc(uuid)}${o.force ? '?force=true' : ''}`)) as { deleted: { uuid: string; state: string; removed: Record<string, number | boolean> } };
      if (json()) return ctx.out(JSON.stringify(res.deleted, null, 2));
      const r = res.deleted.removed;
      ctx.out(`${res.deleted.uuid}: deleted (was ${res.deleted.state}); removed ${r.interfaces} interface(s), ${r.leases} lease(s), ${r.bootAttempts} boot attempt(s), ${r.facts} facts report(s), ${r.events} event(s)${r.bmc ? ', its BMC' : ''}`);
    });

  nodes
    .command('enroll')
    .description('enroll nodes from a CSV or YAML inventory (all or nothing; admin)')
    .argument('<file>', 'inventory: .csv (header uuid,serial,macs,bmc_address,bmc_username,bmc_password,labels,profile…) or .yaml/.yml (a list of nodes)')
    .option('--dry-run', 'check every row and show what would be enrolled; write nothing')
    .option('--format <format>', 'csv or yaml (default: from the file name)')
    .action(async (file: string, o: { dryRun?: boolean; format?: string }) => {
      const ext = extname(file).toLowerCase();
      const format = o.format ?? (ext === '.csv' ? 'csv' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined);
      if (format !== 'csv' && format !== 'yaml') throw ctx.fail(`cannot tell the format of ${file}: name it .csv, .yaml or .yml, or pass --format csv|yaml`);
      let inventory: string;
      try {
        inventory = await readFile(file, 'utf8');
      } catch (e) {
        throw ctx.fail(`cannot read ${file}: ${(e as Error).message}`);
      }
      let res: { dryRun: boolean; enrolled: number; nodes: { row: number; uuid: string; macs: string[]; bmc: string | null; profile: string | null }[] };
      try {
        res = (await ctx.api().post('/api/v1/nodes/enroll', { format, inventory, ...(o.dryRun ? { dryRun: true } : {}) })) as typeof res;
      } catch (e) {
        // every problem, one per line, with its row: the operator fixes the file in one go
        const errors = ((e as CliError).body as { error?: { details?: { errors?: { row: number; field?: string; message: string }[] } } } | undefined)?.error?.details?.errors;
        if (!errors?.length) throw e;
        if (json()) ctx.out(JSON.stringify(errors, null, 2));
        else for (const x of errors) ctx.out(`${file}:${x.row}: ${x.field ? `${x.field}: ` : ''}${x.message}`);
        throw new CliError(`${errors.length} problem(s) in ${file}; nothing was enrolled`, (e as CliError).status, (e as CliError).body);
      }
      if (json()) return ctx.out(JSON.stringify(res, null, 2));
      for (const n of res.nodes) ctx.out(`${pad(n.row, 6)}${pad(n.uuid, 38)}${pad(n.macs.join(',') || '-', 40)}${pad(n.bmc, 28)}${n.profile ?? '-'}`);
      ctx.out(res.dryRun ? `dry run: ${res.nodes.length} node(s) would be enrolled; nothing was written` : `${res.enrolled} node(s) enrolled`);
    });
}

/** `bootfarm nodes ARGS…` with an injected client (tests). */
export const runNodes = (args: string[], o: ContextOptions) => runArea(register, ['nodes', ...args], o);
