// createBmc: the driver for one node's BMC, from its stored record plus the decrypted password.
// Transports are injected (exec for ipmitool, fetch for Redfish) so tests can count calls.
import { createIpmiBmc, type IpmiExec } from './ipmi.ts';
import { createRedfishBmc, type FetchFn } from './redfish.ts';
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

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

export function createBmcFactory({ exec, fetch, observe }: BmcDeps = {}): BmcFactory {
  return function createBmc(t: BmcTarget): Bmc {
    const o = t.options ?? {};
    switch (t.driver) {
      case 'ipmi':
        return createIpmiBmc({ address: t.address, port: t.port, username: t.username, password: t.password, cipherSuite: num(o.cipherSuite), timeoutSeconds: num(o.timeoutSeconds), retries: num(o.retries), exec, observe: observe && ((op, ms, e) => observe('ipmi', op, ms, e)) });
      case 'redfish':
        return createRedfishBmc({ address: t.address, port: t.port, username: t.username, password: t.password, scheme: o.scheme === 'http' ? 'http' : 'https', systemPath: str(o.systemPath), timeoutMs: num(o.timeoutMs), fetch, observe: observe && ((op, ms, e) => observe('redfish', op, ms, e)) });
      default:
        throw new BmcError('unsupported', `${t.address}${t.port ? `:${t.port}` : ''}`, 'connect', `unknown BMC driver "${t.driver}" (ipmi, redfish)`);
    }
  };
}
