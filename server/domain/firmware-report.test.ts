// The fleet report as plain values: rows from nodes + baselines, then label / model / component / state filters.
import { describe, expect, it } from 'vitest';
import { Baseline } from '../contract/firmware.ts';
import type { StoredBaseline } from './firmware.ts';
import { complianceRows, filterReport, reportOptions, type ReportNode } from './firmware-report.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const r650: StoredBaseline = { spec: Baseline.parse({ name: 'r650', selector: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' }, components: [{ type: 'bios', minimum: '2.0' }, { type: 'bmc', minimum: '7.0' }] }), version: 3 };

const node = (uuid: string, over: Partial<ReportNode> & { bios?: string; bmc?: string } = {}): ReportNode => ({
  uuid,
  hostname: `h-${uuid}`,
  state: 'active',
  manufacturer: 'Dell Inc.',
  product: 'PowerEdge R650',
  labels: {},
  factsAt: NOW,
  attempt: null,
  facts: {
    system: { uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32', manufacturer: over.manufacturer ?? 'Dell Inc.', product: over.product ?? 'PowerEdge R650' },
    bios: { vendor: 'Dell Inc.', version: over.bios ?? '2.1' },
    bmc: { firmwareVersion: over.bmc ?? '7.1' },
    nics: [],
  },
  ...over,
});

describe('complianceRows', () => {
  it('evaluates each node against the baseline for its hardware; no baseline is unmanaged', () => {
    const rows = complianceRows([node('a'), node('b', { bios: '1.9' }), node('c', { manufacturer: 'HPE', product: 'DL380' })], [r650]);
    expect(rows.map((r) => [r.uuid, r.model, r.compliance.state, r.compliance.baseline?.version ?? null])).toEqual([
      ['a', 'Dell Inc. PowerEdge R650', 'compliant', 3],
      ['b', 'Dell Inc. PowerEdge R650', 'outdated', 3],
      ['c', 'HPE DL380', 'unmanaged', null],
    ]);
  });

  it('a facts document that no longer parses counts as no facts (unknown), identified by the node row', () => {
    const [row] = complianceRows([node('x', { facts: { system: 'garbage' } })], [r650]);
    expect(row!.model).toBe('Dell Inc. PowerEdge R650');
    expect(row!.compliance.state).toBe('unknown');
  });
});

describe('filterReport', () => {
  const rows = complianceRows(
    [node('a', { labels: { rack: 'r1' } }), node('b', { bios: '1.9', labels: { rack: 'r1' } }), node('c', { bmc: '6.0', labels: { rack: 'r2' } }), node('d', { manufacturer: 'HPE', product: 'DL380' })],
    [r650],
  );

  it('summarises the slice that label and model pick, then lists only the states asked for', () => {
    const rep = filterReport(rows, { label: { rack: 'r1' }, state: ['outdated'] }, NOW);
    expect(rep.generatedAt).toBe('2026-03-01T12:00:00.000Z');
    expect(rep.summary.total).toBe(2);
    expect(rep.summary.counts).toMatchObject({ compliant: 1, outdated: 1 });
    expect(rep.nodes.map((r) => r.uuid)).toEqual(['b']);
    expect(rep.filters).toEqual({ label: { rack: 'r1' }, state: ['outdated'] });
  });

  it('matches the model case- and space-insensitively', () => {
    expect(filterReport(rows, { model: '  dell inc.   poweredge r650 ' }, NOW).nodes.map((r) => r.uuid)).toEqual(['a', 'b', 'c']);
  });

  it('narrows each row to one component, whose status becomes the row state', () => {
    const rep = filterReport(rows, { component: 'BMC' }, NOW);
    expect(rep.nodes.map((r) => [r.uuid, r.compliance.state, r.compliance.components.map((c) => c.component)])).toEqual([
      ['a', 'compliant', ['bmc']],
      ['b', 'compliant', ['bmc']],
      ['c', 'outdated', ['bmc']],
    ]);
  });

  it('offers every model and component of the fleet in the form, sorted', () => {
    expect(reportOptions(rows)).toEqual({ models: ['Dell Inc. PowerEdge R650', 'HPE DL380'], components: ['bios', 'bmc'] });
  });
});
