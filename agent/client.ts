// Typed HTTP client for /api/v1/agent/*. Requests are typed by the contract; responses are validated with the
// contract's zod schemas, so a server/agent version skew shows up as one clear error instead of an undefined
// somewhere in the flow. Every call carries the bearer credential from the kernel command line (stage-1: the boot
// attempt's token; compute OS: its node credential).
import type { z } from 'zod';
import {
  AddressConflictResponse,
  Detail,
  HeartbeatResponse,
  Profile,
  RegisterResponse,
  type AddressConflict,
  type AgentEvent,
  type HeartbeatRequest,
  type InstalledRequest,
  type RegisterRequest,
} from '../server/contract/agent.ts';
import { ErrorBody } from '../server/contract/common.ts';
import { FirmwarePlan, FirmwareReportResponse, type FirmwareReport } from '../server/contract/firmware.ts';
import { PLAN_SIGNATURE_HEADER } from '../server/contract/plan-signature.ts';
import { BmcSetupOffer, BmcSetupOutcome, type BmcSetupResult } from '../server/contract/bmc-setup.ts';

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** The server answered with an error status. `retryable` for 5xx, 408 and 429 (the server may be restarting). */
export class AgentApiError extends Error {
  override name = 'AgentApiError';
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly details?: unknown,
    readonly retryAfterSeconds?: number,
  ) {
    super(`${method} ${url}: ${status} ${code}: ${serverMessage}`);
  }
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** The server could not be reached (refused, reset, DNS, timeout). Always retryable. */
export class AgentNetworkError extends Error {
  override name = 'AgentNetworkError';
  readonly retryable = true;
  constructor(readonly method: string, readonly url: string, cause: unknown) {
    const c = cause as { message?: string; cause?: { code?: string; message?: string } };
    super(`${method} ${url}: ${c?.cause?.code ?? c?.cause?.message ?? c?.message ?? String(cause)}`, { cause });
  }
}

/** The server answered 2xx with a body this agent does not understand (version skew). Not retryable. */
export class AgentResponseError extends Error {
  override name = 'AgentResponseError';
  readonly retryable = false;
}

export function isRetryable(err: unknown): boolean {
  return !!(err && typeof err === 'object' && 'retryable' in err && (err as { retryable: boolean }).retryable);
}

export interface AgentClientOptions {
  server: string;
  token: string;
  fetch?: Fetch;
  timeoutMs?: number;
}

export function createAgentClient({ server, token, fetch: f = globalThis.fetch, timeoutMs = 30_000 }: AgentClientOptions) {
  const base = `${server.replace(/\/+$/, '')}/api/v1/agent`;

  /** The raw 2xx body (bytes, exactly as sent) and headers; errors as `call`. */
  async function raw(method: 'GET' | 'POST', path: string, body: unknown): Promise<{ bytes: Uint8Array; headers: Headers; url: string }> {
    const { res, url } = await succeed(method, path, body);
    return { bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers, url };
  }

  /** The 2xx response to one request: unreachable is AgentNetworkError, an error status AgentApiError. */
  async function succeed(method: 'GET' | 'POST', path: string, body: unknown): Promise<{ res: Response; url: string }> {
    const url = base + path;
    const res = await send(method, url, body);
    if (!res.ok) throw await apiError(method, url, res);
    return { res, url };
  }

  async function send(method: 'GET' | 'POST', url: string, body: unknown): Promise<Response> {
    try {
      return await f(url, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new AgentNetworkError(method, url, err);
    }
  }

  /** The whole body as text, and parsed as JSON where it is JSON (else undefined: the caller's schema says what is wrong). */
  async function readBody(res: Response): Promise<{ text: string; json: unknown }> {
    const text = await res.text().catch(() => '');
    try {
      return { text, json: text ? JSON.parse(text) : undefined };
    } catch {
      return { text, json: undefined };
    }
  }

  async function apiError(method: string, url: string, res: Response): Promise<AgentApiError> {
    const { text, json } = await readBody(res);
    const e = ErrorBody.safeParse(json);
    const ra = Number(res.headers.get('retry-after'));
    return new AgentApiError(
      method,
      url,
      res.status,
      e.success ? e.data.error.code : 'http_error',
      e.success ? e.data.error.message : text.slice(0, 300) || res.statusText,
      e.success ? e.data.error.details : undefined,
      Number.isFinite(ra) && ra > 0 ? ra : undefined,
    );
  }

  async function call<S extends z.ZodType>(method: 'GET' | 'POST', path: string, body: unknown, schema: S | undefined): Promise<z.infer<S>> {
    const { res, url } = await succeed(method, path, body);
    // read even when no schema is wanted: the connection is reused only once its body is consumed
    const { json } = await readBody(res);
    if (!schema) return undefined as z.infer<S>;
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new AgentResponseError(`${method} ${url}: unexpected response: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    }
    return parsed.data;
  }

  const u = (uuid: string) => `/${encodeURIComponent(uuid)}`;
  return {
    register: (req: RegisterRequest) => call('POST', '/register', req, RegisterResponse),
    profile: (uuid: string) => call('GET', `${u(uuid)}/profile`, undefined, Profile),
    detail: (uuid: string) => call('GET', `${u(uuid)}/detail`, undefined, Detail),
    events: (uuid: string, events: AgentEvent[]) => call('POST', `${u(uuid)}/events`, events.length === 1 ? events[0] : { events }, undefined),
    installed: (uuid: string, req: InstalledRequest) => call('POST', `${u(uuid)}/installed`, req, undefined),
    heartbeat: (uuid: string, req: HeartbeatRequest) => call('POST', `${u(uuid)}/heartbeat`, req, HeartbeatResponse),
    /** another host answered for an address the detail gave (ARP probe, IPv6 DAD): the server marks it and hands a replacement */
    addressConflict: (uuid: string, req: AddressConflict) => call('POST', `${u(uuid)}/addresses/conflict`, req, AddressConflictResponse),
    firmwarePlan: (uuid: string) => call('GET', `${u(uuid)}/firmware`, undefined, FirmwarePlan),
    /** the plan's exact bytes and its signature header, for verification before anything is parsed or run */
    firmwarePlanSigned: async (uuid: string) => {
      const r = await raw('GET', `${u(uuid)}/firmware`, undefined);
      return { bytes: r.bytes, signature: r.headers.get(PLAN_SIGNATURE_HEADER), url: r.url };
    },
    firmwareReport: (uuid: string, req: FirmwareReport) => call('POST', `${u(uuid)}/firmware`, req, FirmwareReportResponse),
    bmcSetup: (uuid: string) => call('GET', `${u(uuid)}/bmc-setup`, undefined, BmcSetupOffer),
    bmcSetupReport: (uuid: string, req: BmcSetupResult) => call('POST', `${u(uuid)}/bmc-setup`, req, BmcSetupOutcome),
  };
}
export type AgentClient = ReturnType<typeof createAgentClient>;
