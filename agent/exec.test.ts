import { describe, expect, it } from 'vitest';
import { commandLine, ExecError, run, spawnExec } from './exec.ts';

describe('spawnExec', () => {
  const exec = spawnExec();
  it('keeps stdout, stderr and the exit code', async () => {
    const r = await exec('sh', ['-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toMatchObject({ command: "sh -c 'echo out; echo err >&2; exit 3'", exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
    await expect(run(exec, 'sh', ['-c', 'echo err >&2; exit 3'])).rejects.toThrow(/exit 3: err/);
  });
  it('kills a command that outlives its timeout', async () => {
    // killed, not waited for: the shell never gets to print (no wall-clock assertion needed)
    const r = await exec('sh', ['-c', 'sleep 30; echo late'], { timeoutMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(r.stdout).not.toContain('late');
    expect(r.signal).toBe('SIGKILL');
    expect(new ExecError(r).message).toMatch(/timed out/);
  });
  it('reports a missing binary without throwing', async () => {
    const r = await exec('bootfarm-no-such-tool', []);
    expect(r.exitCode).toBeNull();
    expect(r.stderr).toMatch(/ENOENT/);
  });
  it('quotes arguments for reports', () => {
    expect(commandLine('kexec', ['-l', '/run/k', '--append=a b'])).toBe("kexec -l /run/k '--append=a b'");
  });
});

describe('spawnExec timeout kills the whole command', () => {
  it('returns at the timeout even when the command forked a child that would run longer', async () => {
    const { spawnExec } = await import('./exec.ts');
    const r = await spawnExec()('sh', ['-c', 'sleep 30; echo late'], { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    // had only sh been killed, its child sleep would hold the pipe open for 30 s: the test timeout would fail it
    expect(r.stdout).not.toContain('late');
  });
});
