// Where a CPU profile's time went, as text: self time by where the code lives (a package under node_modules, a
// directory of ours, node's internals, GC, idle) and the functions with the most self time, each as a share of the
// samples that were not idle. For bench/api/bench.ts --profile; any .cpuprofile (node --cpu-prof, DevTools) works.
//   node --import tsx bench/api/profile-summary.ts FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** node_modules/<pkg> (scoped packages keep their scope), our top directory plus one (server/api), node:internal */
export function placeOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const ours = /\/(server|bench|test)\/([^/]+)\//.exec(url) ?? /\/(server|bench|test)\/([^/]+)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]!.replace(/\.ts$/, '')}`;
  return url;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
if (!positionals[0]) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top N]');
const p = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
// Samples are counted, not weighted by the time to the next one: on a loaded machine the process is descheduled
// between samples, and that gap (up to tens of ms) would go to whichever function happened to be sampled before
// it. The profiler ticks only while the thread runs, so counts follow CPU time.
const interval = (p.endTime - p.startTime) / p.samples.length;
const self = new Map<number, number>();
for (const id of p.samples) self.set(id, (self.get(id) ?? 0) + interval);

const places = new Map<string, number>();
const fns = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const [id, us] of self) {
  const { callFrame: f } = byId.get(id)!;
  if (f.functionName === '(idle)') {
    idle += us;
    continue;
  }
  busy += us;
  const place = placeOf(f.url, f.functionName);
  places.set(place, (places.get(place) ?? 0) + us);
  const key = `${f.functionName || '(anonymous)'}  ${place}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(`${positionals[0]}: ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, ${p.samples.length} samples, ${((100 * busy) / (busy + idle)).toFixed(0)} % of them busy`);
console.log('self time by place (share of busy):');
for (const [k, us] of top(places, 20)) console.log(`  ${pct(us)}  ${k}`);
console.log(`top ${values.top} functions by self time:`);
for (const [k, us] of top(fns, Number(values.top))) console.log(`  ${pct(us)}  ${k}`);
