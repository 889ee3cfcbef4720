// The one seam between the fleet controllers and a machine's baseboard management controller. Two drivers
// implement it: IPMI over `ipmitool -I lanplus` (ipmi.ts) and Redfish over HTTP (redfish.ts). Both take their
// transport (an exec function / a fetch function) as a parameter so tests can count and observe calls.
import { AppError } from '../errors.ts';

export type PowerState = 'on' | 'off';
/** on/off are hard; cycle = off then on; reset = warm reset; soft = ACPI shutdown request to the OS */
export type PowerAction = 'on' | 'off' | 'cycle' | 'reset' | 'soft';
export type BootDevice = 'pxe' | 'disk';
export type HealthState = 'ok' | 'warning' | 'critical' | 'unknown';

export interface BmcHealth {
  health: HealthState;
  /** short human-readable detail (which fault, which Redfish status) */
  detail?: string;
}

export interface Bmc {
  readonly driver: 'ipmi' | 'redfish';
  /** address:port, for logs and events (never the credentials) */
  readonly target: string;
  powerStatus(): Promise<PowerState>;
  power(action: PowerAction): Promise<void>;
  /** next boot only unless persistent; uefi: boot the device in UEFI mode (IPMI boot flag "EFI", Redfish
   * BootSourceOverrideMode UEFI) — without it a UEFI machine may PXE boot in legacy mode, or not at all */
  setBootDevice(device: BootDevice, opts?: { persistent?: boolean; uefi?: boolean }): Promise<void>;
  /** diagnostic interrupt; throws BmcError kind 'unsupported' where the BMC has none */
  nmi(): Promise<void>;
  /** chassis identify LED; seconds = 0 turns it off */
  identify(seconds?: number): Promise<void>;
  /** overall health where the BMC reports one; 'unknown' otherwise */
  health(): Promise<BmcHealth>;
  /**
   * Restart the BMC itself (IPMI `mc reset cold`, Redfish Manager.Reset). The host keeps running; the BMC does
   * not answer for a while (seconds on ipmi_sim, a minute or more on real hardware). The last rung of the
   * repair ladder before quarantine: a wedged BMC is a common reason a power cycle "succeeds" and nothing happens.
   */
  mcResetCold(): Promise<void>;
}

export type BmcErrorKind =
  /** no answer: wrong address, BMC down, network */
  | 'unreachable'
  /** the BMC answered but refused the user or password */
  | 'auth'
  /** the BMC does not implement the operation (e.g. NMI on ipmi_sim) */
  | 'unsupported'
  /** the BMC accepted the session but the command failed */
  | 'failed'
  /** the answer could not be understood */
  | 'protocol';

/**
 * A BMC call that did not do what was asked. The message names the BMC and the operation, never the password:
 * drivers pass every piece of BMC output through redact() before it reaches a message.
 */
export class BmcError extends AppError {
  constructor(
    readonly kind: BmcErrorKind,
    readonly target: string,
    readonly operation: string,
    message: string,
  ) {
    super(kind === 'unsupported' ? 422 : 502, `bmc_${kind}`, `BMC ${target}: ${operation}: ${message}`, { kind, target, operation });
    this.name = 'BmcError';
  }
}

export const isBmcError = (e: unknown): e is BmcError => e instanceof BmcError;

/** Removes every occurrence of the secrets from a text (BMC output, an error message) before it is shown. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 1) out = out.split(s).join('***');
  return out;
}

/** What a driver needs to reach one BMC; built from the bmcs row plus its decrypted password. */
export interface BmcTarget {
  driver: string;
  address: string;
  port?: number | null;
  username: string;
  password: string;
  options?: Record<string, unknown>;
}
