// bf_until (images/rootfs/common/lib/bootfarm/common.sh): /init tries the DHCP lease and the iSCSI login again by
// itself instead of waiting in a console for a person. Run here with the host's busybox ash (Debian's busybox,
// the same 1.35 as the image's busybox-static) on the real common.sh; the steps, the event post and the console are
// shell functions the test defines, and `sleep` is one too, so no test waits on the wall clock.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../test/harness/require.ts';

const COMMON = path.join(import.meta.dirname, 'rootfs/common/lib/bootfarm/common.sh');

/** Sources common.sh, replaces what touches the machine, runs `script`; stdin is `input` (EOF when empty). */
function ash(script: string, input = '', env: Record<string, string> = {}): string {
  const prelude = `
    . '${COMMON}'
    bf_post_error() { echo "POSTED $1: $2"; }
    bf_console() { echo "CONSOLE"; }
    sleep() { echo "SLEPT $1"; }
  `;
  return execFileSync('busybox', ['sh', '-c', `${prelude}\n${script}`], { input, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
}

/** A step that fails n times, then succeeds; it sets BF_ISCSI_ERROR like the real one. */
const flaky = (n: number) => `
  n=0
  step() { n=$((n + 1)); BF_ISCSI_ERROR="iscsistart failed (try $n)"; [ "$n" -gt ${n} ]; }
`;

describe('bf_until: a step that waits on a server is tried again in place', () => {
  beforeAll(() => requireCommand('busybox', 'busybox'));

  it('reports the first failure once (console + event), then retries with a doubling, jittered, capped wait', () => {
    const out = ash(`${flaky(5)}\nbf_until iscsi '$BF_ISCSI_ERROR' step; echo "rc=$?"`, '', { BF_RETRY_FIRST: '4', BF_RETRY_MAX: '16' });
    expect(out.match(/^bootfarm: FAILED at iscsi: iscsistart failed \(try 1\)$/gm)).toHaveLength(1);
    // the event is posted once, with the message the step set at its first failure
    expect(out.match(/^POSTED /gm)).toEqual(['POSTED ']);
    expect(out).toContain('POSTED iscsi: iscsistart failed (try 1)');
    // later failures name their try and the step's own, current message
    expect(out).toContain('bootfarm: iscsi still failing (try 5): iscsistart failed (try 5)');
    const waits = [...out.matchAll(/trying iscsi again in (\d+) s; press Enter for a rescue shell/g)].map((m) => Number(m[1]));
    expect(waits).toHaveLength(5);
    // base 4, 8, 16, 16, 16 (capped), each spread over ×0.5–1.5
    [4, 8, 16, 16, 16].forEach((base, i) => {
      expect(waits[i]).toBeGreaterThanOrEqual(base / 2);
      expect(waits[i]).toBeLessThanOrEqual(base / 2 + base);
    });
    // stdin at EOF: `read -t` returns at once, and the wait is still kept (by sleep), never a spin
    const slept = [...out.matchAll(/^SLEPT (\d+)$/gm)].map((m) => Number(m[1]));
    expect(slept).toHaveLength(waits.filter((w) => w > 0).length);
    expect(out).toContain('bootfarm: iscsi: ok after 6 tries');
    expect(out).toContain('rc=0');
    expect(out).not.toContain('CONSOLE');
  });

  it('opens the rescue shell when Enter is pressed, and goes on trying after it closes', () => {
    const out = ash(`${flaky(2)}\nbf_until network "no address on the boot NIC" step; echo "rc=$?"`, '\n\n', { BF_RETRY_FIRST: '2' });
    expect(out.match(/^CONSOLE$/gm)).toHaveLength(2);
    expect(out).toContain('bootfarm: FAILED at network: no address on the boot NIC');
    expect(out).toContain('bootfarm: network: ok after 3 tries');
    expect(out).toContain('rc=0');
  });

  it('a step that works at once says nothing and waits for nothing', () => {
    const out = ash(`${flaky(0)}\nbf_until network "no address" step; echo "rc=$?"`);
    expect(out.trim()).toBe('rc=0');
  });

  it('keeps the step\'s own variables: a step that uses the names tries/wait/stage does not change the schedule', () => {
    // bf_iscsi_login counts its own `tries`; the retry loop must not share it
    const out = ash(`n=0\nstep() { tries=0; wait=999; stage=x; n=$((n + 1)); [ "$n" -gt 2 ]; }\nbf_until iscsi "down" step; echo "rc=$?"`, '', { BF_RETRY_FIRST: '2' });
    expect(out).toContain('bootfarm: iscsi still failing (try 2): down');
    expect(out).toContain('bootfarm: iscsi: ok after 3 tries');
    const waits = [...out.matchAll(/again in (\d+) s/g)].map((m) => Number(m[1]));
    expect(Math.max(...waits)).toBeLessThanOrEqual(6);
  });
});
