// The shared file preamble of `cabling load` and `firmware baseline apply` (cli/document.ts), driven through both
// commands with an injected file system and a fetch that records calls: an unreadable file and an invalid one are
// CliErrors naming the file (and, for a document, its lines), and nothing reaches the server.
import { describe, expect, it } from 'vitest';
import { CliError, runArea } from './context.ts';
import { register as registerCabling } from './cabling.ts';
import { runFirmware } from './firmware.ts';
import { loadDocument } from './document.ts';

const files: Record<string, string> = {
  'plan.csv': 'node,rack,nic,switch,port,policy\nn1,,eth0,tor-1,swp1,warn\nn2,r1,eth0,tor-1,swp2,warn\n',
  'r750.yaml': 'name: r750\nselector: {manufacturer: Dell Inc., product: PowerEdge R750}\ncomponents:\n  - {type: bmc, minimum: "7.10", allowed: ["7.10"]}\n',
};
const readFile = (p: string) => {
  if (!(p in files)) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
  return files[p]!;
};

/** runs one area's command; every HTTP call it makes is recorded and refused */
async function run(area: 'cabling' | 'firmware', args: string[]) {
  const calls: string[] = [];
  const fetchImpl = (async (url: string | URL | Request) => {
    calls.push(String(url));
    throw new Error('no server in this test');
  }) as typeof fetch;
  const o = { fetchImpl, globals: { url: 'http://127.0.0.1:9', token: 't' }, out: () => {} };
  const result = await (area === 'cabling' ? runArea((p, c) => registerCabling(p, c, readFile), ['cabling', ...args], o) : runFirmware(args, { ...o, readFile })).catch((e: unknown) => e);
  return { result, calls };
}

describe('loading a document file before anything is sent', () => {
  it.each([
    ['cabling load: a file that cannot be read is named, with the reason', 'cabling', ['load', 'missing.yaml'], "cannot read missing.yaml: ENOENT: no such file or directory, open 'missing.yaml'"],
    ['firmware baseline apply: a file that cannot be read is named, with the reason', 'firmware', ['baseline', 'apply', 'missing.yaml'], "cannot read missing.yaml: ENOENT: no such file or directory, open 'missing.yaml'"],
    ['cabling load: every issue of an invalid plan on its own line, prefixed with the file', 'cabling', ['load', 'plan.csv'], 'plan.csv: row 3: give exactly one of node or rack'],
    ["firmware baseline apply: the baseline parser's report, with file:line:column", 'firmware', ['baseline', 'apply', 'r750.yaml'], 'r750.yaml: invalid baseline document\n  r750.yaml:4:43: components[0].allowed: has more than one version rule (minimum, allowed); keep one'],
  ] as const)('%s', async (_name, area, args, message) => {
    const { result, calls } = await run(area, [...args]);
    expect(result).toBeInstanceOf(CliError);
    expect((result as Error).message).toBe(message);
    expect(calls).toEqual([]);
  });

  it('an error the parser does not own is a bug: rethrown as it is, not turned into an operator message', () => {
    const bug = new TypeError('x is undefined');
    const fail = (m: string) => new CliError(m);
    expect(() => loadDocument({ fail }, { file: 'f', readFile: () => '', parse: () => { throw bug; }, explain: () => undefined })).toThrow(bug);
    expect(loadDocument({ fail }, { file: 'f', readFile: () => 'text', parse: (t) => t.length, explain: () => undefined })).toEqual({ text: 'text', doc: 4 });
  });
});
