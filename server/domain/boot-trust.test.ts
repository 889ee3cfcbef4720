// decideBootAttempt as a case table (docs/security-model.md "When /ipxe opens a boot attempt").
import { describe, expect, it } from 'vitest';
import { BootAttemptsConfig } from '../config.ts';
import { decideBootAttempt, watchedSince, type BootTrustNode } from './boot-trust.ts';

const cfg = BootAttemptsConfig.parse({}); // gone after 2 missed beats, a boot waited for 1 h
const now = new Date('2026-06-01T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);
const active: BootTrustNode = { state: 'active', credentialHash: 'h', credentialIssuedAt: ago(3600), lastHeartbeat: ago(10), bootExpectedAt: null };

describe('decideBootAttempt (heartbeat interval 30 s, retry 30 s)', () => {
  const cases: [string, Partial<BootTrustNode>, ReturnType<typeof decideBootAttempt> | { open: false; retryAfterSeconds: number }][] = [
    ['active and heartbeating: no attempt, retry in 30 s', {}, { open: false, retryAfterSeconds: 30 }],
    ['active, silent 50 s: retry once it could count as gone (11 s)', { lastHeartbeat: ago(50) }, { open: false, retryAfterSeconds: 11 }],
    ['active, silent exactly 60 s: still running', { lastHeartbeat: ago(60) }, { open: false, retryAfterSeconds: 1 }],
    ['active, silent 61 s: gone', { lastHeartbeat: ago(61) }, { open: true, reason: 'gone', serverStarted: false }],
    ['active, never heartbeated, credential issued 10 s ago: running (kexec under way)', { lastHeartbeat: null, credentialIssuedAt: ago(10) }, { open: false, retryAfterSeconds: 30 }],
    ['active without a credential (before credentials existed)', { credentialHash: null }, { open: true, reason: 'no-credential', serverStarted: false }],
    ['the server started a boot 5 min ago', { bootExpectedAt: ago(300) }, { open: true, reason: 'expected', serverStarted: true }],
    ['a boot the server started 2 h ago is no longer waited for', { bootExpectedAt: ago(7200) }, { open: false, retryAfterSeconds: 30 }],
    ['discovered', { state: 'discovered', credentialHash: null }, { open: true, reason: 'not-active', serverStarted: false }],
    ['failed (its OS may be alive: a heartbeat will close the attempt)', { state: 'failed' }, { open: true, reason: 'not-active', serverStarted: false }],
    ['rebuilding, expected', { state: 'rebuilding', bootExpectedAt: ago(1) }, { open: true, reason: 'expected', serverStarted: true }],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    const got = decideBootAttempt({ ...active, ...over }, now, 30, cfg, 30);
    expect(got).toMatchObject(want);
  });
});

describe('silence counts only while the control plane watched (issue 12 × 13)', () => {
  it('a heartbeat older than the observation window is measured from the window', () => {
    const silent = { ...active, lastHeartbeat: ago(600) };
    expect(decideBootAttempt(silent, now, 30, cfg, 30, ago(20))).toMatchObject({ open: false, retryAfterSeconds: 30 });
    expect(decideBootAttempt(silent, now, 30, cfg, 30, ago(61))).toMatchObject({ open: true, reason: 'gone' });
    expect(decideBootAttempt(silent, now, 30, cfg, 30, null)).toMatchObject({ open: true, reason: 'gone' });
  });
  it('watchedSince: the window while the controller ticks, now when it has not ticked within the bound', () => {
    expect(watchedSince({ lastTickAt: ago(10), observedSince: ago(300) }, now, 45_000)).toEqual(ago(300));
    expect(watchedSince({ lastTickAt: ago(46), observedSince: ago(300) }, now, 45_000)).toEqual(now);
    expect(watchedSince({ lastTickAt: null, observedSince: null }, now, 45_000)).toEqual(now);
  });
});
