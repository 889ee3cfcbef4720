// The CLI's one HTTP caller for the admin API: bearer token, JSON (or raw bytes for uploads) in, the project's
// error shape turned into a readable error out. Each command family passes the error it throws.
// https URLs go through node:https so the server certificate is verified against the system CAs plus an
// optional CA bundle (--ca / BOOTFARM_CA): the admin listener usually has a certificate from a private CA.
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Readable } from 'node:stream';

/** What a command family needs to call the admin API (its own module, so server/cli.ts and server/cli/*.ts do
 * not import each other). */
export interface ApiClient {
  get(path: string): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
  delete(path: string): Promise<unknown>;
}

export type Fail = (message: string, status?: number, body?: unknown) => Error;
export type Call = <T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<T>;

/** Certificate problems node reports (tls.TLSSocket authorizationError codes and the hostname check). */
const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;

/** A fetch for https with the given CA bundle added to node's; the answer is a standard Response. */
export function httpsFetch(caFile: string | undefined, fail: Fail): typeof fetch {
  let ca: string[] | undefined;
  if (caFile) {
    try {
      ca = [...rootCertificates, readFileSync(caFile, 'utf8')];
    } catch (e) {
      throw fail(`cannot read the CA bundle ${caFile}: ${(e as Error).message}`);
    }
  }
  const agent = new Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
  return (async (input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const req = request(String(input), { method: init.method ?? 'GET', headers: init.headers as Record<string, string>, agent }, (res) => {
        // the body as a stream, so a long response (`nodes console --follow`) is read as it arrives
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        const empty = res.statusCode === 204 || res.statusCode === 304;
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status: res.statusCode ?? 502, headers }));
      });
      req.on('error', reject);
      if (init.body !== undefined && init.body !== null) req.end(init.body as string | Uint8Array);
      else req.end();
    })) as typeof fetch;
}

/** "why the connection failed", with a hint when it is the certificate. */
function connectionProblem(e: unknown, url: string): string {
  const err = e as Error & { code?: string; cause?: Error & { code?: string } };
  const root = err.cause ?? err;
  const code = root.code ?? err.code;
  const text = `${code ? `${code}: ` : ''}${root.message}`;
  if (code && CERT_CODES.test(code))
    return `cannot reach ${url}: the server certificate is not trusted (${text}); pass --ca FILE (or BOOTFARM_CA) with the CA that signed the admin listener's certificate`;
  return `cannot reach ${url}: ${text}`;
}

export function createHttp({ url, token, ca, fetchImpl, fail }: { url: string; token?: string | undefined; ca?: string | undefined; fetchImpl?: typeof fetch | undefined; fail: Fail }): Call {
  const doFetch = fetchImpl ?? (url.startsWith('https:') ? httpsFetch(ca, fail) : fetch);
  return async function call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const raw = body instanceof Uint8Array;
    let res: Response;
    try {
      res = await doFetch(url.replace(/\/+$/, '') + path, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': raw ? 'application/offset+octet-stream' : 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
      });
    } catch (e) {
      throw fail(connectionProblem(e, url));
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } })?.error;
      throw fail(`${res.status} ${err?.code ?? ''}: ${err?.message ?? text}`, res.status, json);
    }
    return json as T;
  };
}

/** GET a text body and hand it over as it arrives (a followed console); resolves when the server ends it. */
export function createTextStream({ url, token, ca, fetchImpl, fail }: { url: string; token?: string | undefined; ca?: string | undefined; fetchImpl?: typeof fetch | undefined; fail: Fail }) {
  const doFetch = fetchImpl ?? (url.startsWith('https:') ? httpsFetch(ca, fail) : fetch);
  return async function stream(path: string, onText: (text: string) => void): Promise<void> {
    let res: Response;
    try {
      res = await doFetch(url.replace(/\/+$/, '') + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    } catch (e) {
      throw fail(connectionProblem(e, url));
    }
    if (!res.ok) {
      const text = await res.text();
      let err: { code?: string; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        err = undefined;
      }
      throw fail(`${res.status} ${err?.code ?? ''}: ${err?.message ?? text}`, res.status, text);
    }
    if (!res.body) return;
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) onText(decoder.decode(chunk, { stream: true }));
    const rest = decoder.decode();
    if (rest) onText(rest);
  };
}
