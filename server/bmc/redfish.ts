// Redfish driver (DMTF DSP0266 protocol, DSP0268 schema) over an injected fetch. Authentication is HTTP Basic
// (DSP0266 §13.3 "Basic authentication" — every conforming service supports it); a session token would save
// one hash per request on the BMC but adds a login/logout round trip and state to lose.
//
// Operations, all on the ComputerSystem resource:
//   power status  GET  …/Systems/X                 → PowerState On|Off|PoweringOn|PoweringOff
//   power         POST …/Actions/ComputerSystem.Reset {ResetType}   (On, ForceOff, PowerCycle, ForceRestart,
//                                                                    GracefulShutdown, Nmi)
//   boot device   PATCH …/Systems/X {Boot: {BootSourceOverrideTarget: Pxe|Hdd, BootSourceOverrideEnabled}}
//   identify      PATCH …/Systems/X {LocationIndicatorActive} (1.13+) or {IndicatorLED: Blinking|Off} (older)
//   health        GET  …/Systems/X → Status.Health OK|Warning|Critical
// and on the Manager (the BMC itself):
//   mc reset cold POST …/Managers/Y/Actions/Manager.Reset {ResetType: ForceRestart (or GracefulRestart)}
// Real BMCs serve HTTPS with self-signed certificates: the caller hands in a fetch that trusts them (an undici
// dispatcher with the BMC's CA); this file does not switch TLS verification off.
import { BmcError, redact, type Bmc, type BmcHealth, type BootDevice, type PowerAction, type PowerState } from './types.ts';

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface RedfishOptions {
  /** host or host:port */
  address: string;
  port?: number | null;
  username: string;
  password: string;
  /** 'https' on real hardware; the test responder speaks 'http' */
  scheme?: 'http' | 'https';
  /** e.g. /redfish/v1/Systems/1; discovered from the Systems collection when absent */
  systemPath?: string;
  timeoutMs?: number;
  fetch?: FetchFn;
  observe?: (operation: string, ms: number, error?: BmcError) => void;
}

/** Node's TLS verification failures (the certificate chain, its names or dates), as opposed to a dead network */
const TLS_TRUST = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME|UNABLE_TO_GET_ISSUER/;

const RESET_TYPE: Record<PowerAction, string> = { on: 'On', off: 'ForceOff', cycle: 'PowerCycle', reset: 'ForceRestart', soft: 'GracefulShutdown' };
const BOOT_TARGET: Record<BootDevice, string> = { pxe: 'Pxe', disk: 'Hdd' };

interface SystemDoc {
  PowerState?: string;
  Status?: { Health?: string | null; HealthRollup?: string | null; State?: string };
  LocationIndicatorActive?: boolean;
  IndicatorLED?: string;
  Actions?: { '#ComputerSystem.Reset'?: { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] } };
}

export function createRedfishBmc({ address, port, username, password, scheme = 'https', systemPath, timeoutMs = 10_000, fetch: doFetch = globalThis.fetch, observe }: RedfishOptions): Bmc {
  const host = port ? `${address}:${port}` : address;
  const target = host;
  const origin = `${scheme}://${host}`;
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const clean = (s: string) => redact(redact(s, [password]), [auth]);
  let system: string | undefined = systemPath;

  async function call<T>(operation: string, method: string, path: string, body?: unknown): Promise<T | undefined> {
    const t0 = performance.now();
    let error: BmcError | undefined;
    try {
      let res: Response;
      try {
        res = await doFetch(origin + path, {
          method,
          headers: { authorization: auth, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), 'odata-version': '4.0' },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code;
        if (cause && TLS_TRUST.test(cause))
          throw (error = new BmcError('unreachable', target, operation, `the BMC's TLS certificate is not trusted (${cause}): give the BMC record options.caBundle (its CA or its own certificate, PEM), or options.insecure: true`));
        throw (error = new BmcError('unreachable', target, operation, `no answer from the BMC (${clean(cause ?? (e as Error).message)})`));
      }
      const text = await res.text();
      if (res.status === 401 || res.status === 403) throw (error = new BmcError('auth', target, operation, `authentication rejected (HTTP ${res.status})`));
      if (!res.ok) {
        const msg = extendedMessage(text);
        // DSP0266 §8.6: an action the service does not implement answers 400 ActionParameterNotSupported /
        // PropertyValueNotInList, or 404/405/501 for a missing resource or method.
        const unsupported = [404, 405, 501].includes(res.status) || /NotSupported|NotInList|ActionNotSupported/i.test(msg);
        throw (error = new BmcError(unsupported ? 'unsupported' : 'failed', target, operation, `${unsupported ? 'not supported by this BMC: ' : ''}HTTP ${res.status}${msg ? ` ${clean(msg)}` : ''}`));
      }
      if (!text) return undefined;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw (error = new BmcError('protocol', target, operation, `answer is not JSON (HTTP ${res.status})`));
      }
    } finally {
      observe?.(operation, performance.now() - t0, error);
    }
  }

  async function systemUrl(operation: string): Promise<string> {
    if (system) return system;
    const col = await call<{ Members?: { '@odata.id'?: string }[] }>(operation, 'GET', '/redfish/v1/Systems');
    const first = col?.Members?.[0]?.['@odata.id'];
    if (!first) throw new BmcError('protocol', target, operation, 'the Systems collection has no member');
    return (system = first);
  }

  async function getSystem(operation: string): Promise<SystemDoc> {
    const doc = await call<SystemDoc>(operation, 'GET', await systemUrl(operation));
    if (!doc) throw new BmcError('protocol', target, operation, 'empty ComputerSystem');
    return doc;
  }

  async function reset(operation: string, resetType: string): Promise<void> {
    const path = await systemUrl(operation);
    const doc = await getSystem(operation);
    const action = doc.Actions?.['#ComputerSystem.Reset'];
    const allowed = action?.['ResetType@Redfish.AllowableValues'];
    // A service lists the reset types it implements (DSP0268 ComputerSystem.Reset); asking for another is
    // refused before it reaches the BMC so the caller gets the same "not supported" from every vendor.
    if (allowed && !allowed.includes(resetType)) throw new BmcError('unsupported', target, operation, `not supported by this BMC (ResetType ${resetType}; allowed: ${allowed.join(', ')})`);
    await call(operation, 'POST', action?.target ?? `${path}/Actions/ComputerSystem.Reset`, { ResetType: resetType });
  }

  async function resetManager(): Promise<void> {
    const operation = 'mc reset cold';
    const col = await call<{ Members?: { '@odata.id'?: string }[] }>(operation, 'GET', '/redfish/v1/Managers');
    const path = col?.Members?.[0]?.['@odata.id'];
    if (!path) throw new BmcError('protocol', target, operation, 'the Managers collection has no member');
    const doc = await call<{ Actions?: { '#Manager.Reset'?: { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] } } }>(operation, 'GET', path);
    const action = doc?.Actions?.['#Manager.Reset'];
    const allowed = action?.['ResetType@Redfish.AllowableValues'];
    // DSP0268 Manager.Reset: ForceRestart is the cold reset; a service that lists only GracefulRestart gets that
    const resetType = !allowed || allowed.includes('ForceRestart') ? 'ForceRestart' : allowed.includes('GracefulRestart') ? 'GracefulRestart' : undefined;
    if (!resetType) throw new BmcError('unsupported', target, operation, `not supported by this BMC (Manager.Reset allows: ${allowed!.join(', ')})`);
    await call(operation, 'POST', action?.target ?? `${path}/Actions/Manager.Reset`, { ResetType: resetType });
  }

  return {
    driver: 'redfish',
    mcResetCold: resetManager,
    target,
    async powerStatus(): Promise<PowerState> {
      const s = (await getSystem('power status')).PowerState;
      if (s === 'On' || s === 'PoweringOff') return 'on';
      if (s === 'Off' || s === 'PoweringOn') return 'off';
      throw new BmcError('protocol', target, 'power status', `unknown PowerState ${JSON.stringify(s)}`);
    },
    power: (action) => reset(`power ${action}`, RESET_TYPE[action]),
    async setBootDevice(device, { persistent = false, uefi } = {}) {
      await call(`bootdev ${device}`, 'PATCH', await systemUrl(`bootdev ${device}`), { Boot: { BootSourceOverrideTarget: BOOT_TARGET[device], BootSourceOverrideEnabled: persistent ? 'Continuous' : 'Once', ...(uefi === undefined ? {} : { BootSourceOverrideMode: uefi ? 'UEFI' : 'Legacy' }) } });
    },
    nmi: () => reset('nmi', 'Nmi'),
    async identify(seconds = 15) {
      const doc = await getSystem('identify');
      const on = seconds > 0;
      const body = 'LocationIndicatorActive' in doc ? { LocationIndicatorActive: on } : { IndicatorLED: on ? 'Blinking' : 'Off' };
      await call('identify', 'PATCH', await systemUrl('identify'), body);
    },
    async health(): Promise<BmcHealth> {
      const st = (await getSystem('health')).Status;
      const h = st?.Health ?? st?.HealthRollup;
      if (h === 'OK') return { health: 'ok' };
      if (h === 'Warning') return { health: 'warning', detail: 'Status.Health Warning' };
      if (h === 'Critical') return { health: 'critical', detail: 'Status.Health Critical' };
      return { health: 'unknown', detail: h ? `Status.Health ${h}` : 'no Status.Health' };
    },
  };
}

/** The first message of a Redfish error body (DSP0266 §9.6 "Error responses"), or the raw text cut short. */
function extendedMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: { message?: string; '@Message.ExtendedInfo'?: { MessageId?: string; Message?: string }[] } };
    const info = j.error?.['@Message.ExtendedInfo']?.[0];
    return [info?.MessageId, info?.Message ?? j.error?.message].filter(Boolean).join(': ').slice(0, 300);
  } catch {
    return text.slice(0, 200);
  }
}
