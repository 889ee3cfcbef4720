import { describe, expect, it } from 'vitest';
import { Baseline, type BaselineInput } from '../contract/firmware.ts';
import { Facts } from '../contract/facts.ts';
import { decideGate, evaluateCompliance, modelOf, selectBaseline, summarize, type AttemptSummary, type ReportRow, type StoredBaseline } from './firmware.ts';

const SHA = 'a'.repeat(64);
const stored = (input: BaselineInput, version = 1): StoredBaseline => ({ spec: Baseline.parse(input), version });

const facts = (over: { bios?: string; bmc?: string; nics?: { name: string; driver?: string; pciId?: string; firmwareVersion?: string }[]; product?: string; sku?: string; board?: string } = {}) =>
  Facts.parse({
    system: { uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32', manufacturer: 'Dell Inc.', product: over.product ?? 'PowerEdge R650', ...(over.sku ? { sku: over.sku } : {}) },
    ...(over.board ? { baseboard: { product: over.board } } : {}),
    ...(over.bios !== undefined ? { bios: { vendor: 'Dell Inc.', version: over.bios } } : {}),
    ...(over.bmc !== undefined ? { bmc: { firmwareVersion: over.bmc } } : {}),
    nics: (over.nics ?? []).map((n, i) => ({ mac: `52:54:00:00:00:0${i}`, ...n })),
  });

describe('selectBaseline', () => {
  const b = (name: string, selector: BaselineInput['selector']) => stored({ name, selector, components: [{ type: 'bios', minimum: '1.0' }] });
  const generic = b('r650', { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' });
  const generic2 = b('a-r650', { manufacturer: 'dell inc.', product: 'poweredge  r650' });
  const bySku = b('r650-sku', { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', sku: '0A6B' });
  const byBoard = b('r650-board', { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', board: '0XYZ12' });
  const byBoth = b('r650-both', { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', board: '0XYZ12', sku: '0A6B' });
  const other = b('r750', { manufacturer: 'Dell Inc.', product: 'PowerEdge R750' });
  const all = [generic, generic2, bySku, byBoard, byBoth, other];

  const cases: Array<[string, StoredBaseline[], Parameters<typeof selectBaseline>[1], string | null]> = [
    ['no baseline for the model: unmanaged', all, { manufacturer: 'HPE', product: 'ProLiant DL380 Gen10' }, null],
    ['manufacturer+product only: the two generic ones tie, the name decides', all, { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' }, 'a-r650'],
    ['case and inner spacing do not matter', [generic], { manufacturer: ' DELL INC. ', product: 'PowerEdge   R650' }, 'r650'],
    ['SKU beats the generic one', all.filter((x) => x !== byBoth), { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', sku: '0A6B' }, 'r650-sku'],
    ['board and SKU beats either alone', all, { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', sku: '0A6B', board: '0XYZ12' }, 'r650-both'],
    ['board and SKU equally specific: name decides', [bySku, byBoard], { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', sku: '0A6B', board: '0XYZ12' }, 'r650-board'],
    ['a SKU selector does not match a machine without a SKU', [bySku], { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' }, null],
    ['a different SKU does not match', [bySku, generic], { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', sku: '0999' }, 'r650'],
    ['missing product matches nothing', all, { manufacturer: 'Dell Inc.' }, null],
  ];
  it.each(cases)('%s', (_name, list, id, want) => {
    expect(selectBaseline(list, id)?.spec.name ?? null).toBe(want);
    // the answer does not depend on the order the store returns baselines in
    expect(selectBaseline([...list].reverse(), id)?.spec.name ?? null).toBe(want);
  });

  it('names the model from manufacturer and product', () => {
    expect(modelOf({ manufacturer: 'Dell Inc.', product: ' PowerEdge  R650 ' })).toBe('Dell Inc. PowerEdge R650');
    expect(modelOf({})).toBe('unknown');
  });
});

describe('evaluateCompliance', () => {
  const baseline = stored(
    {
      name: 'r650',
      selector: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' },
      policy: 'enforce',
      maxAttempts: 2,
      components: [
        { type: 'bios', minimum: '1.4.9', update: { sha256: SHA, command: 'flash-bios "$BOOTFARM_FIRMWARE_FILE"', reboot: true } },
        { type: 'bmc', exact: '7.00.00.171' },
        { type: 'nic', driver: 'ice', allowed: ['4.40 0x8001c967 1.3429.0'] },
      ],
    },
    3,
  );

  it('is unmanaged without a baseline', () => {
    expect(evaluateCompliance(null, facts())).toEqual({ state: 'unmanaged', baseline: null, components: [] });
  });

  it('reports each component current, required and status', () => {
    const c = evaluateCompliance(baseline, facts({ bios: '1.2.0', bmc: '7.00.00.171', nics: [{ name: 'eth0', driver: 'ice', firmwareVersion: '4.40 0x8001c967 1.3429.0' }, { name: 'eth1', driver: 'igb', firmwareVersion: '1.0' }] }));
    expect(c.state).toBe('outdated');
    expect(c.baseline).toEqual({ name: 'r650', version: 3, policy: 'enforce' });
    expect(c.components.map((x) => [x.component, x.current, x.required, x.status, x.devices])).toEqual([
      ['bios', '1.2.0', '≥ 1.4.9', 'outdated', []],
      ['bmc', '7.00.00.171', '= 7.00.00.171', 'compliant', []],
      ['nic:ice', '4.40 0x8001c967 1.3429.0', 'one of 4.40 0x8001c967 1.3429.0', 'compliant', ['eth0']],
    ]);
  });

  it('says unknown when a fact is missing, and why', () => {
    const c = evaluateCompliance(baseline, facts({ bios: '1.5.0', nics: [{ name: 'eth1', driver: 'igb' }] }));
    expect(c.state).toBe('unknown');
    expect(c.components.find((x) => x.component === 'bmc')).toMatchObject({ status: 'unknown', current: null, detail: 'bmc.firmwareVersion missing from facts' });
    expect(c.components.find((x) => x.component === 'nic:ice')).toMatchObject({ status: 'unknown', detail: 'no NIC with driver ice' });
  });

  it('an optional NIC that is not fitted does not count; a required one is unknown', () => {
    const optional = stored({ name: 'o', selector: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' }, components: [{ type: 'bios', minimum: '1.0' }, { type: 'nic', pciId: '15B3:1017', optional: true, minimum: '16.35' }] });
    const noCard = evaluateCompliance(optional, facts({ bios: '1.5', nics: [{ name: 'eth0', driver: 'ice', pciId: '8086:1592' }] }));
    expect(noCard.state).toBe('compliant');
    expect(noCard.components.map((c) => c.component)).toEqual(['bios']);
    const withCard = evaluateCompliance(optional, facts({ bios: '1.5', nics: [{ name: 'eth2', driver: 'mlx5_core', pciId: '15b3:1017', firmwareVersion: '16.27.2008' }] }));
    expect(withCard.components[1]).toMatchObject({ component: 'nic:15b3:1017', status: 'outdated', devices: ['eth2'] });
  });

  it('one outdated NIC of two makes the component outdated', () => {
    const c = evaluateCompliance(baseline, facts({ bios: '1.5', bmc: '7.00.00.171', nics: [{ name: 'eth0', driver: 'ice', firmwareVersion: '4.40 0x8001c967 1.3429.0' }, { name: 'eth1', driver: 'ICE', firmwareVersion: '4.20 0x8001d8b6 1.3429.0' }] }));
    expect(c.components[2]).toMatchObject({ status: 'outdated', devices: ['eth0', 'eth1'], current: '4.40 0x8001c967 1.3429.0, 4.20 0x8001d8b6 1.3429.0' });
  });

  it('lays an open attempt over outdated components: updating, then failed when the command failed', () => {
    const f = facts({ bios: '1.2.0', bmc: '7.00.00.171', nics: [{ name: 'eth0', driver: 'ice', firmwareVersion: '4.40 0x8001c967 1.3429.0' }] });
    const open: AttemptSummary = { number: 1, components: ['bios'], results: null, outcome: 'open' };
    expect(evaluateCompliance(baseline, f, open).state).toBe('updating');
    const reportedOk = { ...open, results: [{ component: 'bios', exitCode: 0, stdout: 'done', stderr: '' }] };
    // the agent says it worked, but until fresh facts arrive the component is still being updated
    expect(evaluateCompliance(baseline, f, reportedOk).components[0]!.status).toBe('updating');
    const reportedBad = { ...open, results: [{ component: 'bios', exitCode: 3, stdout: '', stderr: 'flash error' }] };
    expect(evaluateCompliance(baseline, f, reportedBad).state).toBe('failed');
    expect(evaluateCompliance(baseline, f, { ...open, outcome: 'gave-up' }).state).toBe('failed');
  });

  it('fresh compliant facts win over any attempt', () => {
    const f = facts({ bios: '1.4.9', bmc: '7.00.00.171', nics: [{ name: 'eth0', driver: 'ice', firmwareVersion: '4.40 0x8001c967 1.3429.0' }] });
    const c = evaluateCompliance(baseline, f, { number: 2, components: ['bios'], results: [{ component: 'bios', exitCode: 1, stdout: '', stderr: '' }], outcome: 'open' });
    expect(c.state).toBe('compliant');
  });
});

describe('decideGate', () => {
  const spec = (policy: 'report' | 'enforce', withPackage = true): StoredBaseline =>
    stored({
      name: 'r650',
      selector: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650' },
      policy,
      maxAttempts: 2,
      components: [
        { type: 'bios', minimum: '1.4.9', ...(withPackage ? { update: { sha256: SHA, command: 'flash', reboot: true, timeoutSeconds: 900 } } : {}) },
        { type: 'bmc', minimum: '6.0' },
      ],
    });
  const old = facts({ bios: '1.2.0', bmc: '7.00' });
  const current = facts({ bios: '1.4.9', bmc: '7.00' });
  const decide = (b: StoredBaseline | null, f: Facts, n: number) => decideGate(b, evaluateCompliance(b, f), n);

  const cases: Array<[string, StoredBaseline | null, Facts, number, string, RegExp]> = [
    ['unmanaged nodes boot on', null, old, 0, 'ready', /unmanaged/],
    ['report policy boots on and says what is wrong', spec('report'), old, 0, 'ready', /policy report\): bios 1\.2\.0 → ≥ 1\.4\.9/],
    ['enforce and compliant', spec('enforce'), current, 0, 'ready', /compliant with baseline r650 v1/],
    ['enforce and outdated: first attempt', spec('enforce'), old, 0, 'firmware', /bios 1\.2\.0 → ≥ 1\.4\.9/],
    ['enforce and outdated: second attempt', spec('enforce'), old, 1, 'firmware', /update required/],
    ['enforce, attempts used up: quarantine with the reason', spec('enforce'), old, 2, 'quarantine', /still bios 1\.2\.0 → ≥ 1\.4\.9 after 2 update attempts/],
    ['enforce without an update package: quarantine at once', spec('enforce', false), old, 0, 'quarantine', /bios 1\.2\.0 → ≥ 1\.4\.9 has no update package/],
    ['enforce with an unreadable version: quarantine', spec('enforce'), facts({ bios: '1.4.9' }), 0, 'quarantine', /bmc version unknown \(bmc\.firmwareVersion missing/],
  ];
  it('enforce with secureBoot: required quarantines a node with Secure Boot off, naming it, and plans no step for it', () => {
    const b = stored({ ...spec('enforce').spec, secureBoot: 'required' });
    const d = decide(b, { ...current, firmware: { secureBoot: 'disabled' } }, 0);
    expect(d.verdict).toEqual({ action: 'quarantine', reason: 'firmware (baseline r650 v1, enforce): secure-boot: Secure Boot is disabled; the baseline requires it enabled' });
    expect(decide(b, { ...current, firmware: { secureBoot: 'enabled' } }, 0).verdict.action).toBe('ready');
    // report policy: the node boots on and the reason says why it is not compliant
    expect(decide(stored({ ...spec('report').spec, secureBoot: 'required' }), { ...current, firmware: { secureBoot: 'setup-mode' } }, 0).verdict.reason).toMatch(/secure-boot setup-mode → enabled/);
  });

  it.each(cases)('%s', (_name, b, f, n, action, reason) => {
    const d = decide(b, f, n);
    expect(d.verdict.action).toBe(action);
    expect(d.verdict.reason).toMatch(reason);
    expect(d.steps.length).toBe(action === 'firmware' ? 1 : 0);
  });

  it('plans a step with the package URL, digest, command, timeout and reboot', () => {
    expect(decide(spec('enforce'), old, 0).steps).toEqual([
      { component: 'bios', devices: [], current: '1.2.0', required: '≥ 1.4.9', package: { url: `/images/${SHA}`, sha256: SHA }, command: 'flash', timeoutSeconds: 900, reboot: true },
    ]);
  });
});

describe('summarize', () => {
  const row = (uuid: string, model: string, state: ReportRow['compliance']['state'], comps: [string, ReportRow['compliance']['components'][number]['status']][]): ReportRow => ({
    uuid,
    hostname: null,
    model,
    nodeState: 'active',
    labels: {},
    factsAt: null,
    secureBoot: null,
    compliance: { state, baseline: null, components: comps.map(([component, status]) => ({ component, status, factStatus: 'compliant', type: 'bios', devices: [], current: null, required: '', updatable: false })) },
  });
  it('computes percent compliant by model and component; unmanaged counts against the total', () => {
    const s = summarize([
      row('1', 'Dell R650', 'compliant', [['bios', 'compliant'], ['bmc', 'compliant']]),
      row('2', 'Dell R650', 'outdated', [['bios', 'outdated'], ['bmc', 'compliant']]),
      row('3', 'Dell R650', 'compliant', [['bios', 'compliant'], ['bmc', 'compliant']]),
      row('4', 'HPE DL380', 'unmanaged', []),
    ]);
    expect(s.total).toBe(4);
    expect(s.percentCompliant).toBe(50);
    expect(s.byModel.map((b) => [b.key, b.total, b.percentCompliant])).toEqual([['Dell R650', 3, 66.7], ['HPE DL380', 1, 0]]);
    expect(s.byComponent.map((b) => [b.key, b.counts.compliant, b.counts.outdated, b.percentCompliant])).toEqual([['bios', 2, 1, 66.7], ['bmc', 3, 0, 100]]);
  });
});
