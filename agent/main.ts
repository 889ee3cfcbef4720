// bootfarm-agent: the node side of the boot farm. Runs as the stage-1 OS's main program (inventory, register,
// kexec into the compute OS) or, with bootfarm.mode=compute, inside the compute OS (installed + heartbeats).
// Configuration comes from the kernel command line (agent/cmdline.ts); the flags below are for people and tests.
// Built into one binary with `bun build --compile` (mk/agent.mk); needs /proc mounted.
import { parseArgs } from 'node:util';
import { AgentApiError } from './client.ts';
import { spawnExec } from './exec.ts';
import { firmwareUpdateStep } from './firmware/index.ts';
import { AGENT_VERSION, runAgent } from './flow.ts';

const USAGE = `usage: bootfarm-agent [--dry-run] [--mode stage1|compute] [--cmdline FILE] [--work-dir DIR] [--lldp-socket SOCK]
  --dry-run      print the kexec, reboot and network (ip, hostname) commands instead of running them (also: bootfarm.dryrun=1)
  --cmdline      read the kernel command line from FILE instead of /proc/cmdline
  --max-heartbeats N   compute mode: stop after N heartbeats`;

export async function main(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', default: false },
        mode: { type: 'string' },
        cmdline: { type: 'string' },
        'work-dir': { type: 'string' },
        'lldp-socket': { type: 'string' },
        'max-heartbeats': { type: 'string' },
        'retry-base-ms': { type: 'string' },
        version: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  if (a.version) {
    console.log(AGENT_VERSION);
    return 0;
  }
  if (a.mode !== undefined && a.mode !== 'stage1' && a.mode !== 'compute') {
    console.error(`--mode must be stage1 or compute\n${USAGE}`);
    return 2;
  }
  const log = (line: string) => console.error(`${new Date().toISOString()} bootfarm-agent: ${line}`);
  try {
    const result = await runAgent({
      exec: spawnExec(),
      fetch: (input, init) => fetch(input, init),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => new Date(),
      log,
      print: (line) => console.log(line),
      dryRun: a['dry-run'],
      firmware: firmwareUpdateStep,
      ...(a.mode ? { mode: a.mode as 'stage1' | 'compute' } : {}),
      paths: { ...(a.cmdline ? { cmdline: a.cmdline } : {}), ...(a['work-dir'] ? { workDir: a['work-dir'] } : {}) },
      ...(a['lldp-socket'] ? { lldpSocket: a['lldp-socket'] } : {}),
      ...(a['max-heartbeats'] ? { maxHeartbeats: Number(a['max-heartbeats']) } : {}),
      ...(a['retry-base-ms'] ? { backoff: { baseMs: Number(a['retry-base-ms']), capMs: Number(a['retry-base-ms']) * 8 } } : {}),
    });
    log(`done: ${result.outcome}`);
    return 0;
  } catch (err) {
    log(`failed: ${err instanceof AgentApiError ? err.message : ((err as Error).stack ?? String(err))}`);
    return 1;
  }
}

// Bun sets import.meta.main; under Node (tsx) compare the script path
const isMain = (import.meta as { main?: boolean }).main ?? process.argv[1]?.endsWith('agent/main.ts');
// no top-level await: `bun build --bytecode` emits CommonJS, which has none
if (isMain)
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
