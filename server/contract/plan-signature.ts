// Signed firmware plans (issue 16 item 7). The server signs the exact bytes of each plan body it hands the agent
// (GET /api/v1/agent/:uuid/firmware) with ed25519 (RFC 8032) and sends the signature in a header; the agent
// checks it against the public key it was booted with (bootfarm.planKey= on the stage-1 kernel command line,
// which comes from the iPXE script, not from the plan's HTTP channel) before it parses or runs anything.
// Plans travel over plain HTTP (Debian's iPXE has no HTTPS), so without this anyone on the segment could hand a
// node a "firmware update" that runs as root.
//
// Wire: header `x-bootfarm-plan-signature: ed25519=<base64url signature of the body bytes>`;
// key on the command line: base64url of the raw 32-byte ed25519 public key.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const PLAN_SIGNATURE_HEADER = 'x-bootfarm-plan-signature';

// DER prefixes that wrap a raw 32-byte ed25519 key (RFC 8410): SubjectPublicKeyInfo and PKCS#8 PrivateKeyInfo
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface PlanSigner {
  /** base64url of the raw public key: what goes on the kernel command line as bootfarm.planKey= */
  readonly publicKey: string;
  /** the header value for these exact body bytes */
  sign(body: Uint8Array | string): string;
}

/** A signer from a 32-byte seed (the private key; every replica derives the same one: server/secrets.ts). */
export function createPlanSigner(seed: Buffer): PlanSigner {
  if (seed.length !== 32) throw new Error(`plan signing seed must be 32 bytes (got ${seed.length})`);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const publicKey = Buffer.from(spki.subarray(spki.length - 32)).toString('base64url');
  return {
    publicKey,
    sign(body) {
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      return `ed25519=${sign(null, bytes, priv).toString('base64url')}`;
    },
  };
}

/** The public key from its command-line form; throws with a message naming the problem. */
export function planPublicKey(text: string): KeyObject {
  const raw = Buffer.from(text, 'base64url');
  if (!/^[A-Za-z0-9_-]{43}$/.test(text) || raw.length !== 32) throw new Error('bootfarm.planKey= must be base64url of a 32-byte ed25519 public key');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export type PlanVerdict = { ok: true } | { ok: false; reason: 'no-key' | 'bad-key' | 'unsigned' | 'malformed-signature' | 'bad-signature'; message: string };

/** Checks a plan body's signature header against the boot's public key. Never throws. */
export function verifyPlan(body: Uint8Array, header: string | null | undefined, publicKey: string | undefined): PlanVerdict {
  if (!publicKey) return { ok: false, reason: 'no-key', message: 'this boot carries no plan key (bootfarm.planKey= on the kernel command line): a firmware plan cannot be verified' };
  let key: KeyObject;
  try {
    key = planPublicKey(publicKey);
  } catch (e) {
    return { ok: false, reason: 'bad-key', message: (e as Error).message };
  }
  if (!header) return { ok: false, reason: 'unsigned', message: `the firmware plan is not signed (no ${PLAN_SIGNATURE_HEADER} header)` };
  const m = /^ed25519=([A-Za-z0-9_-]{86})$/.exec(header.trim());
  if (!m) return { ok: false, reason: 'malformed-signature', message: `the firmware plan's ${PLAN_SIGNATURE_HEADER} header is not "ed25519=<base64url signature>"` };
  let good = false;
  try {
    good = verify(null, body, key, Buffer.from(m[1]!, 'base64url'));
  } catch {
    good = false;
  }
  return good ? { ok: true } : { ok: false, reason: 'bad-signature', message: 'the firmware plan does not match its signature under this boot\'s plan key (altered in transit, or signed by another key)' };
}
