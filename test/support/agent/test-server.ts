// A small stand-in for the server's agent routes (hono on 127.0.0.1, a random port), validating every request
// with the same contract schemas the real routes use and recording what it got. The real routes in
// server/api/agent.ts need the whole store; this keeps the agent's tests about the agent. The lead can swap
// it for the real app once both have landed.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { z } from 'zod';
import { AddressConflict, AgentEvents, HeartbeatRequest, InstalledRequest, RegisterRequest, type AgentEvent, type Detail, type DetailAddress, type Profile, type RegisterResponse } from '../../../server/contract/agent.ts';

export interface TestServerOptions {
  token: string;
  uuid: string;
  /** answers to successive registrations; the last one repeats */
  registerAnswers?: Array<Partial<RegisterResponse>>;
  kernel?: Buffer;
  initrd?: Buffer;
  /** lie about the kernel digest (to test verification) */
  kernelSha256?: string;
  cmdline?: string;
  /** answers to successive heartbeats; the last one repeats */
  heartbeatAnswers?: Array<'continue' | 'reboot'>;
  /** fail the first N profile requests with 503 */
  profileFailures?: number;
  /** answer installed with 409 invalid_transition, as the server does when the node is not provisioning */
  refuseInstalled?: boolean;
  /** merged into the detail (default: hostname hv-test-01, nothing to configure) */
  detail?: Partial<Detail>;
  /** fail the first N detail requests with 503 */
  detailFailures?: number;
  /** answers to successive address conflicts, in order; none left is 409 pool_exhausted */
  replacements?: DetailAddress[];
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function createTestServer(o: TestServerOptions) {
  const kernel = o.kernel ?? Buffer.from('test kernel image\n'.repeat(1000));
  const initrd = o.initrd ?? Buffer.from('test initrd\n'.repeat(5000));
  const got = {
    registers: [] as RegisterRequest[],
    events: [] as AgentEvent[],
    installed: [] as InstalledRequest[],
    heartbeats: [] as HeartbeatRequest[],
    conflicts: [] as AddressConflict[],
    /** "METHOD path" of every request, in order */
    requests: [] as string[],
  };
  let profileFailures = o.profileFailures ?? 0;
  let detailFailures = o.detailFailures ?? 0;
  const replacements = [...(o.replacements ?? [])];
  let baseUrl = '';
  const app = new Hono();
  const fail = (c: Context, status: 400 | 401 | 404 | 409 | 503, code: string, message: string, details?: unknown) => c.json({ error: { code, message, ...(details ? { details } : {}) } }, status);

  app.use('*', async (c, next) => {
    got.requests.push(`${c.req.method} ${c.req.path}`);
    if (c.req.path.startsWith('/api/') && c.req.header('authorization') !== `Bearer ${o.token}`) return fail(c, 401, 'unauthorized', 'bad or missing token');
    await next();
  });
  async function body<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S> | Response> {
    const r = schema.safeParse(await c.req.json().catch(() => undefined));
    return r.success ? r.data : fail(c, 400, 'invalid_request', 'request does not match the contract', r.error.issues);
  }
  const node = (c: Context) => (c.req.param('uuid') === o.uuid ? undefined : fail(c, 404, 'not_found', `node ${c.req.param('uuid')}`));

  app.post('/api/v1/agent/register', async (c) => {
    const b = await body(c, RegisterRequest);
    if (b instanceof Response) return b;
    got.registers.push(b);
    const answers = o.registerAnswers ?? [{}];
    const a = answers[Math.min(got.registers.length - 1, answers.length - 1)]!;
    const res: RegisterResponse = { uuid: b.facts.system.uuid, state: 'ready', created: got.registers.length === 1, conflicts: [], next: 'provision', ...a };
    return c.json(res, 200);
  });
  app.post('/api/v1/agent/:uuid/events', async (c) => {
    const nf = node(c);
    if (nf) return nf;
    const b = await body(c, AgentEvents);
    if (b instanceof Response) return b;
    const list = 'events' in b ? b.events : [b];
    got.events.push(...list);
    return c.json({ accepted: list.length }, 202);
  });
  app.get('/api/v1/agent/:uuid/profile', (c) => {
    const nf = node(c);
    if (nf) return nf;
    if (profileFailures > 0) {
      profileFailures--;
      return fail(c, 503, 'image_unavailable', 'nothing published yet');
    }
    const p: Profile = {
      uuid: o.uuid,
      profile: 'default',
      image: { name: 'compute', channel: 'stable', version: '2026.11.1' },
      kernel: { url: `${baseUrl}/images/${sha256(kernel)}`, sha256: o.kernelSha256 ?? sha256(kernel), size: kernel.length },
      initrd: { url: `${baseUrl}/images/${sha256(initrd)}`, sha256: sha256(initrd), size: initrd.length },
      cmdline: o.cmdline ?? `console=ttyS0 bootfarm.server=${baseUrl} bootfarm.uuid=${o.uuid} bootfarm.token=per-boot-secret bootfarm.mode=compute bootfarm.kernel=${sha256(kernel)} bootfarm.initrd=${sha256(initrd)}`,
      heartbeatIntervalSeconds: 5,
    };
    return c.json(p);
  });
  app.get('/api/v1/agent/:uuid/detail', (c) => {
    const nf = node(c);
    if (nf) return nf;
    if (detailFailures > 0) {
      detailFailures--;
      return fail(c, 503, 'unavailable', 'restarting');
    }
    return c.json({ uuid: o.uuid, hostname: 'hv-test-01', interfaces: [], labels: { rack: 'r12' }, ...o.detail });
  });
  app.post('/api/v1/agent/:uuid/addresses/conflict', async (c) => {
    const nf = node(c);
    if (nf) return nf;
    const b = await body(c, AddressConflict);
    if (b instanceof Response) return b;
    got.conflicts.push(b);
    const replacement = replacements.shift();
    if (!replacement) return fail(c, 409, 'pool_exhausted', `network ${b.network ?? '?'} has no free address`);
    return c.json({ declined: b.address, network: replacement.network, replacement });
  });
  app.post('/api/v1/agent/:uuid/installed', async (c) => {
    const nf = node(c);
    if (nf) return nf;
    const b = await body(c, InstalledRequest);
    if (b instanceof Response) return b;
    got.installed.push(b);
    if (o.refuseInstalled) return c.json({ error: { code: 'invalid_transition', message: 'node is failed' } }, 409);
    return c.json({ state: 'active' });
  });
  app.post('/api/v1/agent/:uuid/heartbeat', async (c) => {
    const nf = node(c);
    if (nf) return nf;
    const b = await body(c, HeartbeatRequest);
    if (b instanceof Response) return b;
    got.heartbeats.push(b);
    const answers = o.heartbeatAnswers ?? ['continue'];
    return c.json({ state: 'active', next: answers[Math.min(got.heartbeats.length - 1, answers.length - 1)] });
  });
  app.get('/images/:digest', (c) => {
    const d = c.req.param('digest');
    const blob = d === sha256(kernel) ? kernel : d === sha256(initrd) ? initrd : undefined;
    if (!blob) return c.notFound();
    return c.body(new Uint8Array(blob), 200, { 'content-type': 'application/octet-stream' });
  });

  let server: ServerType | undefined;
  return {
    app,
    got,
    kernel,
    initrd,
    /** listen on 127.0.0.1:port (a port from freePort(), so a test can point the agent at it before it is up) */
    async listen(port: number): Promise<string> {
      baseUrl = `http://127.0.0.1:${port}`;
      await new Promise<void>((resolve) => {
        server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => resolve());
      });
      return baseUrl;
    },
    setBaseUrl(u: string) {
      baseUrl = u;
    },
    async close(): Promise<void> {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
export type TestServer = ReturnType<typeof createTestServer>;
