import { createTestDb } from '../test/fakes/db.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import type { DbHandle } from './db/index.ts';
import { buildProgram, CliError, main } from './cli.ts';
import { freePort } from '../test/harness/net.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../test/fakes/app.ts';

const U = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

describe('bootfarm nodes (CLI against the admin API)', () => {
  let db: DbHandle;
  let t: ReturnType<typeof createTestApp>;
  const fetchVia = (app: { request: (u: string, i?: RequestInit) => Response | Promise<Response> }) => (async (url: string | URL | Request, init?: RequestInit) => app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
  beforeAll(async () => {
    db = await createTestDb();
    t = createTestApp(db);
    const tok = await bootToken(t.app, U);
    await client(t.app).post('/api/v1/agent/register', { token: tok, body: { facts: sampleFacts(U, { serial: 'CZ1234' }) } });
  });
  afterAll(async () => db?.close());

  /** the whole CLI (commander program) with the in-process app as its fetch */
  const run = async (args: string[], token = TOKENS.operator) => {
    const lines: string[] = [];
    const code = await main(args, { out: (l) => lines.push(l), err: () => {}, fetchImpl: fetchVia(t.app), env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: token } });
    expect(code).toBe(0);
    return lines;
  };

  it('lists nodes as a table and as JSON', async () => {
    const table = await run(['nodes', 'list']);
    expect(table[0]).toMatch(/^UUID\s+STATE\s+SERIAL/);
    expect(table[1]).toMatch(new RegExp(`^${U}\\s+ready\\s+CZ1234`));
    const json = JSON.parse((await run(['nodes', 'list', '--json'])).join('\n'));
    expect(json[0]).toMatchObject({ uuid: U, state: 'ready' });
    // --json is a global option: before the command works too
    expect(JSON.parse((await run(['--json', 'nodes', 'list'])).join('\n'))).toEqual(json);
    expect(await run(['nodes', 'list', '--state', 'active'])).toHaveLength(1);
  });

  it('shows a node with its interfaces and switch port', async () => {
    const out = (await run(['nodes', 'show', U])).join('\n');
    expect(out).toMatch(/^state\s+ready$/m);
    expect(out).toMatch(/interface\s+52:54:00:12:34:56 eth0 switch=tor-1 port=rack1 port 7/);
  });

  it('prints the event timeline and acts', async () => {
    const ev = (await run(['nodes', 'events', U])).join('\n');
    expect(ev).toMatch(/transition\s+discovered → inspecting/);
    expect(await run(['nodes', 'action', U, 'maintenance-on', '--reason', 'bios swap'])).toEqual([`${U}: maintenance`]);
  });

  it('nodes power: board actions go to POST /power with their options', async () => {
    const sent: { url: string; body: unknown }[] = [];
    const recording = (async (url: string | URL | Request, init?: RequestInit) => {
      const body = JSON.parse(String(init?.body));
      sent.push({ url: String(url), body });
      return new Response(JSON.stringify(body.action === 'bmc-reset' ? { action: 'bmc-reset', bootdev: null } : { action: body.action, bootdev: null, power: 'on' }), { headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const lines: string[] = [];
    const opts = { out: (l: string) => lines.push(l), err: () => {}, fetchImpl: recording, env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: TOKENS.operator } };
    expect(await main(['nodes', 'power', U, 'identify', '--seconds', '30'], opts)).toBe(0);
    expect(await main(['nodes', 'power', U, 'bmc-reset'], opts)).toBe(0);
    expect(sent.map((r) => r.body)).toEqual([{ action: 'identify', seconds: 30 }, { action: 'bmc-reset' }]);
    expect(sent[0]!.url).toBe(`http://bootfarm/api/v1/nodes/${U}/power`);
    expect(lines).toEqual([`${U}: power on (identify)`, `${U}: bmc-reset done`]);
    const errs: string[] = [];
    expect(await main(['nodes', 'power', U, 'identify', '--seconds', 'soon'], { ...opts, err: (l: string) => errs.push(l) })).toBe(2);
    expect(errs.join('\n')).toMatch(/--seconds must be a whole number/);
  });

  it('turns API errors into a readable CliError', async () => {
    await expect(run(['nodes', 'show', '00000000-0000-0000-0000-000000000000'])).rejects.toThrow(/404 not_found: node 00000000-0000-0000-0000-000000000000 not found/);
    await expect(run(['nodes', 'action', U, 'retire'])).rejects.toThrow(/403 forbidden: this action needs the admin role/);
    const port = await freePort();
    const unreachable = main(['nodes', 'list', '--url', `http://127.0.0.1:${port}`, '--token', 'x'], { out: () => {}, env: {} });
    await expect(unreachable).rejects.toBeInstanceOf(CliError);
    await expect(unreachable).rejects.toThrow(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });
});

describe('bootfarm usage errors, help and completion', () => {
  const capture = async (args: string[]) => {
    const out: string[] = [];
    let err = '';
    const code = await main(args, { out: (l) => out.push(l), err: (s) => (err += s), env: {} });
    return { code, out: out.join('\n'), err };
  };

  it('an unknown or misspelled option is an error with a suggestion (exit 2), not ignored', async () => {
    const r = await capture(['nodes', 'list', '--stat', 'ready']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/error: unknown option '--stat'\n\(Did you mean --state\?\)/);
    expect(r.out).toBe('');
  });

  it('an unknown command or subcommand is an error with a suggestion (exit 2)', async () => {
    expect(await capture(['nods', 'list'])).toMatchObject({ code: 2, err: expect.stringMatching(/error: unknown command 'nods'\n\(Did you mean nodes\?\)/) });
    expect(await capture(['image', 'promot', 'x'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command 'promot'\n\(Did you mean promote\?\)/) });
    expect(await capture(['firmware', 'baseline', 'lst'])).toMatchObject({ code: 2, err: expect.stringMatching(/\(Did you mean list\?\)/) });
  });

  it('missing arguments, a bad choice and extra arguments are usage errors (exit 2)', async () => {
    expect(await capture(['nodes', 'show'])).toMatchObject({ code: 2, err: expect.stringMatching(/missing required argument 'uuid'/) });
    expect(await capture(['nodes', 'action', U, 'reboot'])).toMatchObject({ code: 2, err: expect.stringMatching(/value 'reboot' is invalid for argument 'action'\. Allowed choices are maintenance-on, maintenance-off/) });
    expect(await capture(['nodes', 'show', U, 'extra'])).toMatchObject({ code: 2, err: expect.stringMatching(/too many arguments for 'show'/) });
    expect(await capture(['image', 'push', '/tmp', '--version', '1'])).toMatchObject({ code: 2, err: expect.stringMatching(/required option '--name <name>' not specified/) });
    // no command at all: the help, on stderr, exit 2 as before
    expect(await capture([])).toMatchObject({ code: 2, err: expect.stringMatching(/^Usage: bootfarm \[options\] \[command\]/) });
  });

  it('every command and subcommand has --help (exit 0, on stdout, listing its options and the global ones)', async () => {
    const { program } = buildProgram({ out: () => {} });
    const paths: string[][] = [];
    const walk = (c: Command, p: string[]) => {
      paths.push(p);
      for (const s of c.commands) walk(s, [...p, s.name()]);
    };
    walk(program, []);
    expect(paths.length).toBeGreaterThan(18);
    for (const p of paths) {
      const r = await capture([...p, '--help']);
      expect(r, p.join(' ')).toMatchObject({ code: 0, err: '' });
      expect(r.out).toMatch(new RegExp(`^Usage: bootfarm${p.length ? ` ${p.join(' ')}` : ''} `));
      if (p.length) expect(r.out).toMatch(/Global Options:[\s\S]*--url <url>[\s\S]*--json/);
    }
    expect((await capture(['nodes', 'list', '--help'])).out).toMatch(/--state <state>\s+only nodes in this state/);
  });

  it('bash completion from the command tree: commands, subcommands, options, choices, value options skipped', async () => {
    const script = (await capture(['completion', 'bash'])).out;
    const complete = (words: string[]) => {
      const cmd = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _bootfarm_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync('bash', ['--norc', '-c', cmd], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return r.stdout.trim().split('\n').filter(Boolean);
    };
    expect(complete(['bootfarm', ''])).toEqual(expect.arrayContaining(['serve', 'nodes', 'fleet', 'firmware', 'image', 'completion', '--url', '--json']));
    expect(complete(['bootfarm', 'no'])).toEqual(['nodes']);
    expect(complete(['bootfarm', 'nodes', 'l'])).toEqual(['list']);
    expect(complete(['bootfarm', '--url', 'http://x', 'nodes', 'list', '--s'])).toEqual(['--state']);
    expect(complete(['bootfarm', 'firmware', 'baseline', ''])).toEqual(expect.arrayContaining(['apply', 'list', 'show']));
    expect(complete(['bootfarm', 'nodes', 'power', U, 'c'])).toEqual(['cycle']);
    expect(complete(['bootfarm', 'image', 'push', '--name', 'nodes', '--f'])).toEqual(['--force']);
  });

  it('zsh completion from the same tree loads and offers subcommands', async () => {
    const script = (await capture(['completion', 'zsh'])).out;
    expect(script.split('\n')[0]).toBe('#compdef bootfarm');
    // zsh -n parses the whole script; the table is the one the bash test exercises
    const r = spawnSync('zsh', ['-n', '-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(script).toContain(`'nodes') cands=('list:list nodes' 'show:a node with its interfaces, switch ports and conflicts'`);
    expect(script).toContain(`valued=('--state' '--label' '--url' '--token' '--ca')`);
  });

  it('the real binary: exit 2 and the suggestion on stderr for a misspelled option', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'fleet', 'resume', '--reson', 'x'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error: unknown option '--reson'\n\(Did you mean --reason\?\)/);
  }, 150_000);
});
