// Plan signatures with real ed25519 keys (node:crypto): what the agent accepts and what it refuses.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPlanSigner, planPublicKey, PLAN_SIGNATURE_HEADER, verifyPlan } from './plan-signature.ts';

const signer = createPlanSigner(Buffer.alloc(32, 0x42));
const body = Buffer.from(JSON.stringify({ uuid: 'u', attempt: 1, steps: [{ component: 'bios', command: 'flash' }] }));

describe('plan signatures', () => {
  it('a signed plan verifies under the signer\'s public key', () => {
    expect(verifyPlan(body, signer.sign(body), signer.publicKey)).toEqual({ ok: true });
    expect(signer.sign(body.toString('utf8'))).toBe(signer.sign(body));
  });

  it('every single altered byte is refused', () => {
    const sig = signer.sign(body);
    for (let i = 0; i < body.length; i++) {
      const altered = Buffer.from(body);
      altered[i] = altered[i]! ^ 0x01;
      expect(verifyPlan(altered, sig, signer.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature' });
    }
  });

  it('refuses a missing or malformed signature, a missing or bad key, and another key', () => {
    expect(verifyPlan(body, null, signer.publicKey)).toMatchObject({ ok: false, reason: 'unsigned', message: expect.stringContaining(PLAN_SIGNATURE_HEADER) });
    expect(verifyPlan(body, 'rsa=abc', signer.publicKey)).toMatchObject({ ok: false, reason: 'malformed-signature' });
    expect(verifyPlan(body, signer.sign(body), undefined)).toMatchObject({ ok: false, reason: 'no-key' });
    expect(verifyPlan(body, signer.sign(body), 'not-a-key')).toMatchObject({ ok: false, reason: 'bad-key' });
    const other = createPlanSigner(Buffer.alloc(32, 0x43));
    expect(verifyPlan(body, signer.sign(body), other.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('the public key is the raw ed25519 key, the same node:crypto derives from a generated pair', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');
    expect(planPublicKey(raw).equals(publicKey)).toBe(true);
    expect(signer.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
