// GET /api/v1/firmware/baselines and /baselines/:name: the Secure Boot requirement a baseline carries
// (contract Baseline.secureBoot, issue 19) is in both answers, and in the CLI's list. Real app and firmware mount
// over a migrated PGlite; the whole firmware flow (enforce, report, the page in Chromium) is test/firmware/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../cli.ts';
import { runFirmware } from '../cli/firmware.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { client, createFirmwareTestApp, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';

let db: DbHandle;
let app: ReturnType<typeof createFirmwareTestApp>['app'];
let api: ReturnType<typeof client>;
const clock = new FakeClock('2026-12-03T12:00:00Z');

beforeAll(async () => {
  db = await createTestDb();
  ({ app } = createFirmwareTestApp(db, { clock }));
  api = client(app);
  const doc = (name: string, extra = '') => `name: ${name}\nselector: {manufacturer: Dell Inc., product: PowerEdge ${name.toUpperCase()}}\ncomponents:\n  - {type: bmc, minimum: "7.10"}\n${extra}`;
  for (const text of [doc('r650', 'secureBoot: required\n'), doc('r750')]) {
    const res = await app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: text });
    expect(res.status, await res.clone().text()).toBe(201);
  }
});
afterAll(async () => {
  await db?.close();
});

describe('a baseline\'s Secure Boot requirement', () => {
  it('is in the list: "required" for the baseline that has it, null for the one that does not', async () => {
    const list = await api.get('/api/v1/firmware/baselines', { token: TOKENS.viewer });
    expect(list.status).toBe(200);
    expect((list.json.baselines as { name: string; secureBoot: unknown }[]).map((b) => [b.name, b.secureBoot])).toEqual([
      ['r650', 'required'],
      ['r750', null],
    ]);
  });

  it('is in the list\'s OpenAPI schema', async () => {
    const doc = (await api.get('/api/v1/openapi.json')).json;
    expect(JSON.stringify(doc.paths['/api/v1/firmware/baselines'].get)).toContain('secureBoot');
  });

  it('is in one baseline and its history as applied, and absent where the document had none', async () => {
    const r650 = await api.get('/api/v1/firmware/baselines/r650', { token: TOKENS.viewer });
    expect(r650.status).toBe(200);
    expect(r650.json.baseline.secureBoot).toBe('required');
    expect(r650.json.history.map((h: { spec: { secureBoot?: string } }) => h.spec.secureBoot)).toEqual(['required']);
    const r750 = await api.get('/api/v1/firmware/baselines/r750', { token: TOKENS.viewer });
    expect(r750.json.baseline).not.toHaveProperty('secureBoot');
  });

  it('is a column of `bootfarm firmware baseline list`', async () => {
    const lines: string[] = [];
    const cliApi = apiClient('http://bootfarm.test', TOKENS.viewer, ((url: string, init?: RequestInit) => app.request(url, init)) as typeof fetch);
    await runFirmware(['baseline', 'list'], { api: cliApi, out: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/^NAME\s+VERSION\s+POLICY\s+SELECTOR\s+COMPONENTS\s+SECUREBOOT\s+UPDATED$/);
    expect(lines.find((l) => l.startsWith('r650 '))).toMatch(/\s1\s+required\s+2026-12-03T12:00:00\.000Z by api:admin$/);
    expect(lines.find((l) => l.startsWith('r750 '))).toMatch(/\s1\s+-\s+2026-12-03T12:00:00\.000Z by api:admin$/);
  });
});
