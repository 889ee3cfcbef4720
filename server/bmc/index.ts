// createBmc: the driver for one node's BMC, from its stored record plus the decrypted password.
// Transports are injected (exec for ipmitool, fetch for Redfish) so tests can count calls.
import { createIpmiBmc, type IpmiExec } from './ipmi.ts';
import { createRedfishBmc, type FetchFn } from './redfish.ts';
import { bmcFetch } from './tls.ts';
import { BmcError, type Bmc, type BmcTarget } from './types.ts';

export * from './types.ts';
export { createIpmiBmc, execRunner, type IpmiExec } from './ipmi.ts';
export { createRedfishBmc, type FetchFn } from './redfish.ts';

export interface BmcDeps {
  exec?: IpmiExec;
  fetch?: FetchFn;
  /** latency/error observer (metrics) */
  observe?: (driver: string, operation: string, ms: number, error?: BmcError) => void;
}

export type BmcFactory = (target: BmcTarget) => Bmc;

/**
 * Whether a PXE override should ask for a UEFI boot: the BMC record's `bootMode` option when the operator set
 * one, else the firmware the node's iPXE last reported ('efi' | 'pcbios'); undefined when nothing is known (the
 * BMC keeps its own default).
 */
export function pxeUefi(options: Record<string, unknown> | null | undefined, bootPlatform: string | null | undefined): boolean | undefined {
  if (options?.bootMode === 'uefi') return true;
  if (options?.bootMode === 'legacy') return false;
  if (bootPlatform === 'efi') return true;
  if (bootPlatform === 'pcbios') return false;
  return undefined;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

export function createBmcFactory({ exec, fetch, observe }: BmcDeps = {}): BmcFactory {
  return function createBmc(t: BmcTarget): Bmc {
    const o = t.options ?? {};
    switch (t.driver) {
      case 'ipmi':
        return createIpmiBmc({ address: t.address, port: t.port, username: t.username, password: t.password, cipherSuite: num(o.cipherSuite), timeoutSeconds: num(o.timeoutSeconds), retries: num(o.retries), exec, observe: observe && ((op, ms, e) => observe('ipmi', op, ms, e)) });
      case 'redfish':
        return createRedfishBmc({
          address: t.address,
          port: t.port,
          username: t.username,
          password: t.password,
          scheme: o.scheme === 'http' ? 'http' : 'https',
          systemPath: str(o.systemPath),
          timeoutMs: num(o.timeoutMs),
          // an injected transport (tests) wins; else the BMC's own trust setting (bmc/tls.ts), else the system's
          fetch: fetch ?? bmcFetch({ caBundle: str(o.caBundle), insecure: o.insecure === true }),
          observe: observe && ((op, ms, e) => observe('redfish', op, ms, e)),
        });
      default:
        throw new BmcError('unsupported', `${t.address}${t.port ? `:${t.port}` : ''}`, 'connect', `unknown BMC driver "${t.driver}" (ipmi, redfish)`);
    }
  };
}
