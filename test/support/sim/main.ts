// The simulator as a process, for running inside a network namespace (`ip netns exec NS node --import tsx
// test/support/sim/main.ts '<json options>'`): prints `READY`, then `PROGRESS <json counts>` every second, and on
// a `stop` line on stdin (or stdin closing, or SIGTERM) stops the heartbeats and prints `DONE <json reports>`.
import { createInterface } from 'node:readline';
import { startSimFleet, type SimFleetOptions } from './fleet.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as SimFleetOptions & { verbose?: boolean };
const fleet = await startSimFleet({
  ...opts,
  log: opts.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
  onFailed: (r) => process.stdout.write(`FAILED ${r.uuid} ${r.error}\n`),
});
process.stdout.write('READY\n');
const timer = setInterval(() => process.stdout.write(`PROGRESS ${JSON.stringify(fleet.counts())}\n`), 1000);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  const reports = await fleet.stop();
  process.stdout.write(`DONE ${JSON.stringify(reports)}\n`, () => process.exit(0));
};
createInterface({ input: process.stdin }).on('line', (l) => l.trim() === 'stop' && void stop()).on('close', () => void stop());
process.on('SIGTERM', () => void stop());
