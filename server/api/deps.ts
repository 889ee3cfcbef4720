// Everything the HTTP API needs, handed in by main (or a test). No module singletons.
import type { Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { DbHandle } from '../db/index.ts';
import type { NodeStore, NodeRow } from '../store/nodes.ts';
import type { BmcStore } from '../store/bmcs.ts';
import type { AuditIntent, AuditStore } from '../store/audit.ts';
import type { CablingStore } from '../store/cabling.ts';
import type { IpamStore } from '../store/ipam.ts';
import type { ConsoleStore } from '../store/console.ts';
import type { ImageCatalog } from '../domain/images.ts';
import type { InspectionGate } from '../domain/inspection.ts';
import type { Logger } from '../log.ts';
import type { Clock } from '../clock.ts';
import type { ImagePipeline } from '../images/pipeline.ts';
import type { NodeCompliance } from '../domain/firmware.ts';
import type { BeatBuffer } from '../fleet/beats.ts';
import type { BootBudget } from '../images/budget.ts';
import type { PlanSigner } from '../contract/plan-signature.ts';
import type { OpenFn } from '../../boot/tftp/index.ts';

/** A power action through a node's BMC (server/api/power.ts createPowerControl), for the API and the dashboard. */
export interface PowerControl {
  act(uuid: string, request: { action: 'on' | 'off' | 'cycle' | 'reset' | 'soft' | 'nmi' | 'identify' | 'bmc-reset'; bootdev?: 'pxe' | 'disk'; seconds?: number }, actor: string, audit?: AuditIntent): Promise<{ action: string; bootdev: string | null; power?: string }>;
}

/** What the dashboard's images page uses of the image pipeline. */
export type ImageChannels = Pick<ImagePipeline, 'list' | 'history' | 'promote' | 'rollback' | 'channels'>;

export interface Deps {
  config: Config;
  db: DbHandle;
  nodes: NodeStore;
  bmcs: BmcStore;
  images: ImageCatalog;
  inspection: InspectionGate;
  log: Logger;
  clock: Clock;
  metrics?: Registry;
  /** steady-state heartbeats coalesced per replica (server/fleet/beats.ts); without it each one is written at once */
  beats?: BeatBuffer;
  /** this replica's boot budget (server/images/budget.ts): stage-1 downloads and registrations at once */
  budget?: BootBudget;
  /** operator-requested rebuild; the fleet supplies one that also drives the BMC */
  rebuild?: (uuid: string, reason: string, actor: string, audit?: AuditIntent) => Promise<NodeRow>;
  /** the audit log (server/store/audit.ts); createApp makes one over `db` when not given */
  audit?: AuditStore;
  /** the cabling plan (server/store/cabling.ts); createApp makes one over `db` when not given */
  cabling?: CablingStore;
  /** IPAM networks and allocations (server/store/ipam.ts); createApp makes one over `db` when not given */
  ipam?: IpamStore;
  /** captured serial consoles (the node page shows the end); default: a store on deps.db */
  consoles?: Pick<ConsoleStore, 'tail'>;
  /** the fleet-wide circuit breaker (server/store/fleet.ts BreakerState): the UI shows a banner while it is open */
  fleetBreaker?: () => Promise<{ open: boolean; reason: string | null; openedAt: Date | null }>;
  /** since when heartbeats have been watched without a gap (fleet.watchedSince): /ipxe counts silence from here */
  fleetWatchedSince?: () => Promise<Date>;
  /** power actions through the BMCs (the dashboard's node page); without it the page offers none */
  power?: PowerControl;
  /** image channels (the dashboard's images page); without it the page says there is no pipeline */
  imageChannels?: ImageChannels;
  /** one node's firmware compliance (server/api/firmware.ts nodeCompliance), for the node page */
  firmwareCompliance?: (uuid: string) => Promise<NodeCompliance | null>;
  /** signs firmware plans; its public key goes on the stage-1 command line (bootfarm.planKey=). Without it the
   * stage-1 agent refuses every firmware plan (it has nothing to verify with). */
  planSigner?: PlanSigner;
  /** iPXE EFI binaries by name for UEFI HTTP boot (server/api/bootfiles.ts; main passes the TFTP server's opener);
   * without it GET /ipxe.efi is a 404 */
  bootFiles?: OpenFn;
}
