// The fleet report as plain values: rows from nodes + baselines, then label / model / component / state filters.
import { describe, expect, it } from 'vitest';
import { Baseline } from '../contract/firmware.ts';
import type { StoredBaseline } from './firmware.ts';
import { complianceRows, filterReport, reportOptions, type ReportNode } from './firmware-report.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const r650: StoredBaseline = { spec: Baseline.parse({ name: 'r650', selector: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' }, components: [{ type: 'bios', minimum: '2.0' }, { type: 'bmc', minimum: '7.0' }] }), version: 3 };

const node = (uuid: string, over: Partial<ReportNode> & { bios?: string; bmc?: string; secureBoot?: string } = {}): ReportNode => ({
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
    ...(over.secureBoot ? { firmware: { secureBoot: over.secureBoot } } : {}),
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

describe('Secure Boot in the report (issue 19)', () => {
  const strict: StoredBaseline = { spec: Baseline.parse({ ...r650.spec, name: 'r650-sb', secureBoot: 'required' }), version: 1 };

  it('shows each node’s Secure Boot state from its facts, with or without a baseline requiring it', () => {
    const rows = complianceRows([node('a', { secureBoot: 'enabled' }), node('b', { secureBoot: 'disabled' }), node('c')], [r650]);
    expect(rows.map((r) => [r.uuid, r.secureBoot, r.compliance.state])).toEqual([
      ['a', 'enabled', 'compliant'],
      ['b', 'disabled', 'compliant'],
      ['c', null, 'compliant'],
    ]);
    // r650 does not require it: no secure-boot component
    expect(rows[1]!.compliance.components.map((c) => c.component)).toEqual(['bios', 'bmc']);
  });

  const cases: Array<[string, string | undefined, string, string | undefined]> = [
    ['enabled complies', 'enabled', 'compliant', undefined],
    ['disabled does not', 'disabled', 'outdated', 'Secure Boot is disabled; the baseline requires it enabled'],
    ['setup mode (no Platform Key) does not', 'setup-mode', 'outdated', 'Secure Boot is setup-mode; the baseline requires it enabled'],
    ['a legacy BIOS boot does not', 'not-uefi', 'outdated', 'Secure Boot is not-uefi; the baseline requires it enabled'],
    ['a state the agent could not read is unknown', 'unknown', 'unknown', 'Secure Boot is unknown; the baseline requires it enabled'],
    ['facts from an agent that does not report it are unknown', undefined, 'unknown', 'firmware.secureBoot missing from facts (agent too old?); the baseline requires Secure Boot enabled'],
  ];
  it.each(cases)('secureBoot: required — %s', (_name, reported, state, detail) => {
    const [row] = complianceRows([node('x', reported ? { secureBoot: reported } : {})], [strict]);
    expect(row!.compliance.state).toBe(state);
    const sb = row!.compliance.components.find((c) => c.component === 'secure-boot');
    expect(sb).toMatchObject({ type: 'secure-boot', current: reported ?? null, required: 'enabled', status: state, updatable: false });
    expect(sb!.detail).toBe(detail);
  });

  it('the component filter can pick secure-boot alone', () => {
    const rows = complianceRows([node('a', { secureBoot: 'enabled' }), node('b', { secureBoot: 'disabled', bios: '1.0' })], [strict]);
    expect(filterReport(rows, { component: 'secure-boot' }, NOW).nodes.map((r) => [r.uuid, r.compliance.state])).toEqual([
      ['a', 'compliant'],
      ['b', 'outdated'],
    ]);
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
