// HTTPS to a BMC. Most BMCs ship a self-signed certificate, so the system trust store rejects them and plain
// fetch fails. Per BMC the operator gives either the CA (or the BMC's own certificate, PEM) that signs it —
// verification stays on, against that bundle only — or, knowingly, `insecure: true` (no verification; logged
// on every enrolment). undici's Agent is what carries `connect.ca`; Node 20 ships undici but does not export
// its Agent, so the package is a dependency and its own fetch is used with it (an Agent from one undici copy
// must not be handed to another copy's fetch).
import { createHash } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import type { FetchFn } from './redfish.ts';

export interface BmcTls {
  /** PEM: the CA that signed the BMC's certificate, or the self-signed certificate itself */
  caBundle?: string;
  /** skip certificate verification (an operator's explicit choice; never the default) */
  insecure?: boolean;
}

// one connection pool per distinct trust setting, not per BMC call (createBmc runs for every operation);
// bounded so a stream of distinct bundles cannot grow it
const agents = new Map<string, Agent>();
export const MAX_AGENTS = 256;
// How long an unused connection stays open. It is also what ends an evicted pool: eviction only forgets it (a
// closed undici Agent refuses every later request with ClientClosedError, and a fetch handed out before the
// eviction — a Redfish operation's session login, then its action — still dispatches through it). Its requests
// finish, its idle sockets time out (after this long, or the BMC's Keep-Alive hint, which undici caps at 10 min),
// undici drops a pool whose sockets are gone, and the Agent is garbage once no fetch refers to it.
const KEEP_ALIVE_MS = 10_000;

function agentFor(tls: BmcTls): Agent {
  const key = tls.insecure ? 'insecure' : `ca:${createHash('sha256').update(tls.caBundle ?? '').digest('hex')}`;
  let a = agents.get(key);
  if (!a) {
    if (agents.size >= MAX_AGENTS) {
      // the oldest entry; not closed (see KEEP_ALIVE_MS)
      agents.delete(agents.keys().next().value!);
    }
    a = new Agent({ connect: tls.insecure ? { rejectUnauthorized: false } : { ca: tls.caBundle, rejectUnauthorized: true }, keepAliveTimeout: KEEP_ALIVE_MS });
    agents.set(key, a);
  }
  return a;
}

/** A fetch for one BMC's HTTPS endpoint, or undefined when neither option is set (the system trust store). */
export function bmcFetch(tls: BmcTls): FetchFn | undefined {
  if (!tls.caBundle && !tls.insecure) return undefined;
  const dispatcher = agentFor(tls);
  return (input, init) => undiciFetch(input, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
}
