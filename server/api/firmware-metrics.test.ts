// The firmware gauges are computed at scrape time from the database (server/api/firmware-views.ts): a scrape must
// still answer, with the last good values and a stale flag, when the database is slow or failing (issue 14: the
// HA rack's /metrics hung while a paused replica held row locks, exactly when an operator looks at it).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ReportRow } from '../domain/firmware.ts';
import { registerFirmwareMetrics } from './firmware-views.ts';

const row = (model: string, state: string): ReportRow => ({ model, compliance: { state, components: [] } }) as unknown as ReportRow;

describe('firmware gauges when the database does not answer', () => {
  it('serve the last good rows with bootfarm_firmware_report_stale 1, and recover', async () => {
    const registry = new Registry();
    let mode: 'ok' | 'hang' | 'fail' = 'ok';
    let calls = 0;
    registerFirmwareMetrics(
      registry,
      async () => {
        calls++;
        if (mode === 'hang') return new Promise<ReportRow[]>(() => {});
        if (mode === 'fail') throw new Error('connection refused');
        return [row('X1', 'compliant'), row('X1', 'compliant'), row('X1', 'outdated')];
      },
      { timeoutMs: 50 },
    );
    const value = (text: string, re: RegExp) => Number(text.match(re)?.[1]);
    let text = await registry.metrics();
    expect(value(text, /bootfarm_firmware_nodes\{model="X1",state="compliant"\} (\d+)/)).toBe(2);
    expect(value(text, /bootfarm_firmware_report_stale (\d+)/)).toBe(0);
    // one computation per scrape serves every gauge
    expect(calls).toBe(1);

    mode = 'hang';
    await new Promise((r) => setTimeout(r, 5));
    text = await registry.metrics();
    expect(value(text, /bootfarm_firmware_nodes\{model="X1",state="compliant"\} (\d+)/)).toBe(2);
    expect(value(text, /bootfarm_firmware_report_stale (\d+)/)).toBe(1);

    mode = 'fail';
    await new Promise((r) => setTimeout(r, 5));
    text = await registry.metrics();
    expect(value(text, /bootfarm_firmware_nodes\{model="X1",state="outdated"\} (\d+)/)).toBe(1);
    expect(value(text, /bootfarm_firmware_report_stale (\d+)/)).toBe(1);

    mode = 'ok';
    await new Promise((r) => setTimeout(r, 5));
    text = await registry.metrics();
    expect(value(text, /bootfarm_firmware_report_stale (\d+)/)).toBe(0);
  });
});
