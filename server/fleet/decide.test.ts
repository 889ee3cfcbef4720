// decide() is pure: case tables named in words, plus a property test of the concurrency limits.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decide, backoffMs, healthVerdict, rebuildOutcome, type FleetNode, type RebuildRecord } from './decide.ts';
import { FleetConfig } from './config.ts';

const NOW = new Date('2026-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);
const cfg = FleetConfig.parse({ heartbeat: { intervalSeconds: 30, missed: 3, profiles: { slow: 120 } }, rebuild: { maxConcurrent: 2, maxConcurrentPerRack: 1, maxAttempts: 3, backoffBaseSeconds: 60, backoffMaxSeconds: 300, ladder: ['reprovision'] } });
const node = (over: Partial<FleetNode> & { uuid?: string } = {}): FleetNode => ({ uuid: 'n1', state: 'active', stateSince: ago(3600), stateReason: null, labels: {}, profile: null, lastHeartbeat: ago(10), rebuildAttempts: 0, hasBmc: true, ...over });

describe('health verdicts', () => {
  const cases: [string, FleetNode, string | null][] = [
    ['a fresh heartbeat is healthy', node(), null],
    ['90 s without heartbeat is still within 3 × 30 s', node({ lastHeartbeat: ago(90) }), null],
    ['91 s without heartbeat has failed', node({ lastHeartbeat: ago(91) }), 'heartbeat'],
    ['the slow profile has 3 × 120 s', node({ profile: 'slow', lastHeartbeat: ago(300) }), null],
    ['a node just installed counts from becoming active', node({ stateSince: ago(20), lastHeartbeat: ago(5000) }), null],
    ['provisioning past 30 min has timed out', node({ state: 'provisioning', stateSince: ago(31 * 60) }), 'timeout'],
    ['inspecting within 15 min is fine', node({ state: 'inspecting', stateSince: ago(14 * 60) }), null],
    ['rebuilding past 15 min has timed out', node({ state: 'rebuilding', stateSince: ago(16 * 60) }), 'timeout'],
    ['maintenance is never judged', node({ state: 'maintenance', lastHeartbeat: ago(99999) }), null],
    ['quarantined is never judged', node({ state: 'quarantined', stateSince: ago(99999) }), null],
    ['discovered is never judged', node({ state: 'discovered', stateSince: ago(99999) }), null],
  ];
  it.each(cases)('%s', (_, n, want) => {
    expect(healthVerdict(n, NOW, cfg)?.cause ?? null).toBe(want);
  });

  it('a BMC power-off observation fails an active node, unless it is older than the current state', () => {
    expect(healthVerdict(node(), NOW, cfg, { at: ago(5), power: 'off' })?.reason).toBe('node is active but its BMC reports the power off');
    expect(healthVerdict(node({ stateSince: ago(3) }), NOW, cfg, { at: ago(5), power: 'off' })).toBeNull();
    expect(healthVerdict(node(), NOW, cfg, { at: ago(5), power: 'on', health: { health: 'critical', detail: 'Main Power Fault' } })?.cause).toBe('bmc-health');
    expect(healthVerdict(node(), NOW, cfg, { at: ago(5), error: { kind: 'unreachable', message: 'x' } })).toBeNull();
  });
});

describe('remediation', () => {
  it('backs off exponentially between attempts, capped', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, cfg) / 1000)).toEqual([0, 60, 120, 240, 300, 300]);
  });

  it('rebuilds the oldest failures first, up to the global and per-rack limits, and says why the rest wait', () => {
    const nodes = [
      node({ uuid: 'a', state: 'failed', stateSince: ago(50), labels: { rack: 'r1' } }),
      node({ uuid: 'b', state: 'failed', stateSince: ago(40), labels: { rack: 'r1' } }),
      node({ uuid: 'c', state: 'failed', stateSince: ago(30), labels: { rack: 'r2' } }),
      node({ uuid: 'd', state: 'failed', stateSince: ago(20) }),
    ];
    const d = decide({ nodes, rebuilds: [], now: NOW, config: cfg });
    expect(d.map((x) => `${x.type} ${x.uuid}`)).toEqual(['rebuild a', 'wait b', 'rebuild c', 'wait d']);
    expect(d.find((x) => x.uuid === 'b')?.reason).toBe('1 rebuilds in flight in rack r1 (limit 1)');
    expect(d.find((x) => x.uuid === 'd')?.reason).toBe('2 rebuilds in flight (limit 2)');
  });

  it('waits out the backoff, quarantines after N attempts, quarantines a node without a BMC', () => {
    const d = decide({
      nodes: [
        node({ uuid: 'early', state: 'failed', stateSince: ago(30), rebuildAttempts: 1 }),
        node({ uuid: 'due', state: 'failed', stateSince: ago(61), rebuildAttempts: 1, stateReason: 'stuck' }),
        node({ uuid: 'spent', state: 'failed', stateSince: ago(999), rebuildAttempts: 3, stateReason: 'stuck in rebuilding' }),
        node({ uuid: 'nobmc', state: 'failed', hasBmc: false }),
      ],
      rebuilds: [],
      now: NOW,
      config: cfg,
    });
    const by = Object.fromEntries(d.map((x) => [x.uuid, x]));
    expect(by.early).toMatchObject({ type: 'wait', until: ago(-30) });
    expect(by.due).toMatchObject({ type: 'rebuild', attempt: 2, reason: 'rebuild attempt 2/3 (reprovision) after: stuck' });
    expect(by.spent).toMatchObject({ type: 'quarantine', reason: '3 rebuild attempt(s) did not bring the node back (last failure: stuck in rebuilding)' });
    expect(by.nobmc?.type).toBe('quarantine');
  });

  it('closes a running rebuild by what its node did since it started', () => {
    const rec: RebuildRecord = { id: 1, nodeUuid: 'n1', attempt: 1, rack: null, failedAt: ago(600), startedAt: ago(500), finishedAt: null, outcome: 'running' };
    expect(rebuildOutcome(rec, node({ state: 'active', stateSince: ago(10) }))?.outcome).toBe('succeeded');
    expect(rebuildOutcome(rec, node({ state: 'active', stateSince: ago(900) }))).toBeNull();
    expect(rebuildOutcome(rec, node({ state: 'inspecting', stateSince: ago(10) }))).toBeNull();
    expect(rebuildOutcome(rec, node({ state: 'failed', stateSince: ago(10), stateReason: 'x' }))).toEqual({ outcome: 'failed', reason: 'x' });
    expect(rebuildOutcome(rec, node({ state: 'maintenance', stateSince: ago(10) }))?.outcome).toBe('abandoned');
  });

  it('never starts more rebuilds than the limits allow, whatever is already in flight (property)', () => {
    const racks = ['r1', 'r2', 'r3', null];
    fc.assert(
      fc.property(
        fc.array(fc.record({ rack: fc.constantFrom(...racks), failedFor: fc.integer({ min: 0, max: 5000 }), attempts: fc.integer({ min: 0, max: 4 }), running: fc.boolean() }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (spec, maxConcurrent, perRack) => {
          const config = FleetConfig.parse({ rebuild: { maxConcurrent, maxConcurrentPerRack: perRack, maxAttempts: 4 } });
          const nodes = spec.map((s, i) => node({ uuid: `n${i}`, state: s.running ? 'rebuilding' : 'failed', stateSince: ago(s.failedFor), rebuildAttempts: s.attempts, labels: s.rack ? { rack: s.rack } : {} }));
          // in-flight records that respect the limits (what an earlier tick could have produced)
          const rebuilds: RebuildRecord[] = [];
          const count = new Map<string, number>();
          spec.forEach((s, i) => {
            if (!s.running || rebuilds.length >= maxConcurrent || (s.rack && (count.get(s.rack) ?? 0) >= perRack)) return;
            if (s.rack) count.set(s.rack, (count.get(s.rack) ?? 0) + 1);
            rebuilds.push({ id: i + 1, nodeUuid: `n${i}`, attempt: 1, rack: s.rack, failedAt: ago(9999), startedAt: ago(9999), finishedAt: null, outcome: 'running' });
          });
          const started = decide({ nodes, rebuilds, now: NOW, config }).filter((d) => d.type === 'rebuild');
          expect(rebuilds.length + started.length).toBeLessThanOrEqual(maxConcurrent);
          for (const r of racks.filter(Boolean)) {
            const n = rebuilds.filter((x) => x.rack === r).length + started.filter((x) => x.type === 'rebuild' && x.rack === r).length;
            expect(n).toBeLessThanOrEqual(perRack);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
