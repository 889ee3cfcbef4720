// The CLI's one HTTP caller for the admin API: bearer token, JSON (or raw bytes for uploads) in, the project's
// error shape turned into a readable error out. Each command family passes the error it throws.
/** What a command family needs to call the admin API (its own module, so server/cli.ts and server/cli/*.ts do
 * not import each other). */
export interface ApiClient {
  get(path: string): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
}

export type Fail = (message: string, status?: number, body?: unknown) => Error;

export function createHttp({ url, token, fetchImpl = fetch, fail }: { url: string; token?: string | undefined; fetchImpl?: typeof fetch; fail: Fail }) {
  return async function call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const raw = body instanceof Uint8Array;
    let res: Response;
    try {
      res = await fetchImpl(url.replace(/\/+$/, '') + path, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': raw ? 'application/offset+octet-stream' : 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
      });
    } catch (e) {
      throw fail(`cannot reach ${url}: ${(e as Error).message}`);
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
