// The project's import graph and the folder rules of ARCHITECTURE.md / docs/architecture.md, checked as data.
//
// Why a small script over the TypeScript compiler API rather than dependency-cruiser: every import in this
// repository is a relative path with its `.ts` extension (tsconfig `allowImportingTsExtensions`), so resolving
// one is a path join; `ts.preProcessFile` (typescript is already a devDependency) lists static, type-only,
// re-export and dynamic `import()` specifiers without type-checking, so the whole graph builds in well under a
// second. The rules are a dozen lines of TypeScript that read like the plan, with no exceptions; a new
// npm dependency (and its config language) would buy nothing here.
import ts from 'typescript';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export type Graph = Map<string, string[]>;

const ROOTS = ['boot', 'server', 'agent', 'images', 'test', 'bench'];

/** Every .ts and .tsx file under the project's source folders → the project files it imports (repo-relative paths). */
export function buildGraph(root: string): { graph: Graph; unresolved: string[] } {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      if (e === 'node_modules' || e.startsWith('.')) continue;
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if ((p.endsWith('.ts') || p.endsWith('.tsx')) && !p.endsWith('.d.ts')) files.push(relative(root, p));
    }
  };
  for (const r of ROOTS) if (existsSync(join(root, r))) walk(join(root, r));
  const graph: Graph = new Map();
  const unresolved: string[] = [];
  for (const f of files.sort()) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(root, f), 'utf8'), true, true);
    const deps = new Set<string>();
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue; // packages and node: builtins
      const base = resolve(root, dirname(f), fileName);
      const hit = [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts')].find((p) => existsSync(p) && statSync(p).isFile());
      if (!hit) unresolved.push(`${f} imports ${fileName}, which is not a file`);
      else if (hit.endsWith('.ts') || hit.endsWith('.tsx')) deps.add(relative(root, hit));
    }
    graph.set(f, [...deps].sort());
  }
  return { graph, unresolved };
}

/** Test code: the test/ and bench/ trees, *.test.ts, and test-support folders/files (testing/, test-support/, bench/, testing.ts). */
export const isTestCode = (f: string) => /^(test|bench)\//.test(f) || /\.test\.tsx?$/.test(f) || /(^|\/)(testing|test-support|bench)\//.test(f) || /(^|\/)testing\.ts$/.test(f);

/** The layer of a production file inside server/, or null outside server/. */
export function serverLayer(f: string): string | null {
  const m = /^server\/(?:([a-z-]+)\/|([a-z-]+)\.tsx?$)/.exec(f);
  if (!m) return null;
  if (m[1]) return m[1]; // contract, db, store, domain, images, bmc, fleet, api, cli
  const top = m[2]!;
  if (['errors', 'clock', 'log', 'secrets', 'config', 'metrics'].includes(top)) return 'base';
  if (top === 'main' || top === 'cli') return top;
  // any other top-level module (boot-backend.ts, dhcp-metrics.ts …) is a service main wires in: it may use
  // what the controllers use, and only api/, main and the CLI may import it
  return 'service';
}

/**
 * Which server layers a production file of each layer may import (its own layer is always allowed).
 *   api → fleet / images / bmc / domain → store → db;  contract and base (errors, clock, log, secrets, config, metrics)
 *   under everything; contract imports nothing else. The store may read pure domain types (never fleet, api,
 *   images, bmc); cycles between store and domain are caught by the cycle check.
 */
export const SERVER_LAYERS: Record<string, string[]> = {
  contract: [],
  base: ['contract'],
  db: ['contract', 'base'],
  store: ['db', 'domain', 'contract', 'base'],
  domain: ['store', 'db', 'contract', 'base'],
  bmc: ['domain', 'store', 'db', 'contract', 'base'],
  images: ['domain', 'store', 'db', 'contract', 'base'],
  fleet: ['images', 'bmc', 'domain', 'store', 'db', 'contract', 'base'],
  service: ['images', 'bmc', 'domain', 'store', 'db', 'contract', 'base'],
  api: ['service', 'fleet', 'images', 'bmc', 'domain', 'store', 'db', 'contract', 'base'],
  main: ['api', 'service', 'fleet', 'images', 'bmc', 'domain', 'store', 'db', 'contract', 'base'],
  cli: ['main', 'api', 'service', 'fleet', 'images', 'bmc', 'domain', 'store', 'db', 'contract', 'base'],
};

/** Every rule broken by one edge `from → to` (both repo-relative). */
export function edgeViolations(from: string, to: string): string[] {
  const out: string[] = [];
  const why = (rule: string) => out.push(`${from} → ${to}: ${rule}`);
  if (from.startsWith('boot/') && /^(server|agent)\//.test(to)) why('boot/ imports nothing from server/ or agent/ (it asks through BootBackend)');
  if (isTestCode(from)) return out; // tests may reach anything else (an agent test may start the real server)
  if (isTestCode(to)) why('production code never imports test/, bench/ or test support');
  if (from.startsWith('agent/') && to.startsWith('server/') && !to.startsWith('server/contract/')) why('agent/ imports only server/contract/ from the server');
  const a = serverLayer(from);
  const b = serverLayer(to);
  if (a === 'contract') {
    if (!to.startsWith('server/contract/')) why('server/contract imports nothing else from the project (agent/ builds on it alone)');
  } else if (a && b && a !== b) {
    const allowed = SERVER_LAYERS[a];
    if (!allowed) why(`unknown server folder "${a}": add it to SERVER_LAYERS in test/arch/import-graph.ts and docs/architecture.md`);
    else if (!allowed.includes(b)) why(`server/${a} may not import server/${b} (layers: api → fleet/images/bmc/domain → store → db; contract below all)`);
  }
  return out;
}

/** Strongly connected components with more than one file (or a file importing itself): the import cycles. */
export function cycles(graph: Graph): string[][] {
  // Tarjan's algorithm, iterative so a deep chain cannot overflow the stack
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { v: string; i: number }[] = [{ v: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const deps = graph.get(top.v) ?? [];
      if (top.i < deps.length) {
        const w = deps[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== top.v);
        if (scc.length > 1 || (graph.get(top.v) ?? []).includes(top.v)) found.push(scc.sort());
      }
    }
  }
  return found;
}

/** All problems of a graph, as sentences naming the files; empty when the layout follows the plan. */
export function checkGraph(graph: Graph): string[] {
  const problems: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) problems.push(...edgeViolations(from, to));
    // test support and benchmarks (testing/, test-support/, bench/, testing.ts) never sit beside production code
    const inProduction = /^(boot|server|agent|images)\//.test(from) && isTestCode(from) && !/\.test\.ts$/.test(from);
    if (inProduction) problems.push(`${from}: test support and benchmarks live in test/ or bench/, not in a production folder`);
  }
  for (const c of cycles(graph)) problems.push(`import cycle: ${c.join(' ↔ ')}`);
  return problems;
}
