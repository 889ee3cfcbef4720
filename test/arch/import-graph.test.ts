// The folder rules hold on the real tree (no cycles, no upward imports, no test code in production), and the
// checker itself catches each kind of violation on a small made-up graph, so a green run means something.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { buildGraph, checkGraph, cycles, type Graph } from './import-graph.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const g = (edges: Record<string, string[]>): Graph => new Map(Object.entries(edges));

describe('import graph', () => {
  it('the repository follows the folder rules of docs/architecture.md', () => {
    const { graph, unresolved } = buildGraph(root);
    expect(graph.size).toBeGreaterThan(100); // it really read the tree
    expect(graph.get('server/main.ts')).toContain('server/api/app.ts');
    expect(unresolved).toEqual([]);
    expect(checkGraph(graph)).toEqual([]);
  });

  it('names a cycle, including one through a type-only import', () => {
    expect(cycles(g({ 'server/cli.ts': ['server/cli/firmware.ts'], 'server/cli/firmware.ts': ['server/cli.ts'], 'server/log.ts': [] }))).toEqual([['server/cli.ts', 'server/cli/firmware.ts']]);
    expect(cycles(g({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts'], 'd.ts': ['d.ts'] }))).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']]);
    expect(checkGraph(g({ 'server/domain/a.ts': ['server/domain/b.ts'], 'server/domain/b.ts': ['server/domain/a.ts'] }))).toEqual(['import cycle: server/domain/a.ts ↔ server/domain/b.ts']);
  });

  it.each([
    ['server/store/fleet.ts', 'server/fleet/decide.ts', 'server/store may not import server/fleet'],
    ['server/images/admin.ts', 'server/api/validate.ts', 'server/images may not import server/api'],
    ['server/domain/x.ts', 'server/fleet/decide.ts', 'server/domain may not import server/fleet'],
    ['server/db/index.ts', 'server/store/nodes.ts', 'server/db may not import server/store'],
    ['server/contract/agent.ts', 'server/errors.ts', 'server/contract imports nothing else'],
    ['server/api/app.ts', 'server/main.ts', 'server/api may not import server/main'],
    ['server/store/nodes.ts', 'server/boot-backend.ts', 'server/store may not import server/service'],
    ['boot/dhcp/server.ts', 'server/store/leases.ts', 'boot/ imports nothing from server/'],
    ['boot/dhcp/server.test.ts', 'agent/client.ts', 'boot/ imports nothing from server/ or agent/'],
    ['agent/main.ts', 'server/api/app.ts', 'agent/ imports only server/contract/'],
    ['server/images/serve.ts', 'test/fakes/images.ts', 'production code never imports test/'],
    ['server/cli/image.ts', 'bench/images.ts', 'production code never imports test/, bench/'],
    ['agent/flow.ts', 'agent/flow.test.ts', 'production code never imports'],
    ['agent/main.ts', 'test/support/agent/test-server.ts', 'production code never imports test/'],
    ['boot/dhcp/server.ts', 'test/support/dhcp/fakes.ts', 'production code never imports test/'],
    ['server/metrics.ts', 'server/dhcp-metrics.ts', 'server/base may not import server/service'],
  ])('%s → %s is refused', (from, to, message) => {
    const problems = checkGraph(g({ [from]: [to], [to]: [] }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${from} → ${to}`);
    expect(problems[0]).toContain(message);
  });

  it.each([
    ['server/api/firmware.ts', 'server/domain/firmware.ts'],
    ['server/store/fleet.ts', 'server/domain/rebuild.ts'],
    ['server/fleet/decide.ts', 'server/bmc/types.ts'],
    ['agent/facts/dmi.ts', 'server/contract/facts.ts'],
    ['agent/e2e-server.test.ts', 'server/api/app.ts'],
    ['server/api/images.test.ts', 'test/fakes/images.ts'],
    ['server/store/leases.ts', 'boot/dhcp/index.ts'],
    ['server/main.ts', 'server/dhcp-metrics.ts'],
    ['server/boot-backend.ts', 'server/store/nodes.ts'],
    // the scrape-time counter helper is a base module: the image area uses it as well as the DHCP/TFTP services
    ['server/images/metrics.ts', 'server/metrics.ts'],
    ['server/tftp-metrics.ts', 'server/metrics.ts'],
  ])('%s → %s is allowed', (from, to) => {
    expect(checkGraph(g({ [from]: [to], [to]: [] }))).toEqual([]);
  });

  it('refuses test support and benchmarks inside a production folder (there is no allowlist)', () => {
    expect(checkGraph(g({ 'server/images/testing.ts': [] }))).toEqual(['server/images/testing.ts: test support and benchmarks live in test/ or bench/, not in a production folder']);
    expect(checkGraph(g({ 'server/bench/dhcp-serve.ts': [] }))).toHaveLength(1);
    expect(checkGraph(g({ 'server/fleet/testing.ts': [] }))).toHaveLength(1);
    expect(checkGraph(g({ 'boot/dhcp/testing/fakes.ts': [] }))).toHaveLength(1);
    expect(checkGraph(g({ 'agent/test-support/fixtures.ts': [] }))).toHaveLength(1);
    expect(checkGraph(g({ 'test/support/dhcp/fakes.ts': [], 'bench/dhcp/bench.ts': [], 'test/fakes/fleet.ts': [] }))).toEqual([]);
  });
});
