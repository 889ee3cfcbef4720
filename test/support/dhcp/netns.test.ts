// The Lab's owner registry: a test process killed before its afterAll leaves its namespaces behind (seen: a
// bfdhcp-p6-… namespace of the OVMF IPv6 test after vitest was stopped); the next Lab removes them. Real namespaces
// (ip netns), a real child process that dies without cleaning up; the registry is a temp dir of this test.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Lab, sh, sweepOrphans } from './netns.ts';

const owners = mkdtempSync(join(tmpdir(), 'bf-netns-owners-'));
const mine = new Lab(undefined, 'bfsweep', owners);
const list = () => sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]);
afterAll(async () => {
  await mine.cleanup();
  sweepOrphans(owners);
  rmSync(owners, { recursive: true, force: true });
});

it("removes the namespaces of a dead test process, and only those, when the next Lab starts", async () => {
  // a process that makes a namespace and exits without cleanup(), as a killed vitest worker does
  const url = new URL('./netns.ts', import.meta.url).href;
  const made = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { Lab } = await import(${JSON.stringify(url)}); const l = new Lab(undefined, 'bfsweep', ${JSON.stringify(owners)}); console.log(l.ns('dead'));`], { encoding: 'utf8' }).trim();
  const live = mine.ns('live');
  expect(list()).toEqual(expect.arrayContaining([made, live]));
  expect(existsSync(join(owners, made))).toBe(true);

  new Lab(undefined, 'bfsweep', owners); // the next Lab (a later test file) sweeps on construction
  expect(list()).not.toContain(made);
  expect(existsSync(join(owners, made))).toBe(false);
  // this process is alive: its namespace stays until its own cleanup()
  expect(list()).toContain(live);
  await mine.cleanup();
  expect(list()).not.toContain(live);
  expect(existsSync(join(owners, live))).toBe(false);
});
