// Serial console capture (issue 16 item 4): which nodes' consoles are read, by whom, and where the bytes go.
//
// Capture is IPMI SOL through each node's BMC (bmc/sol.ts), not QEMU's serial socket: SOL is what a real rack
// has (the BMC owns the serial port, nothing runs on the node, a hung kernel still prints its panic), and the
// same code then serves the test rack, whose ipmi_sim wires its `sol` device to the VM's serial port.
//
// Who is captured: nodes in a booting state (config.console.states, in that order of preference: a rebuild is the
// boot most worth watching), at most maxSessions at once — not every node forever: each session is an ipmitool
// process here and an RMCP+ session on the BMC. Ties go to the node that entered its state first, then by UUID, so
// the choice is stable from one tick to the next (STYLE.md §7) and a running session is not dropped for a newer
// node. A node that leaves those states, or loses its BMC record, is let go at the next reconcile.
//
// Only the fleet leader captures (it runs reconcile() as a leader task, fleet/controller.ts leaderTasks): two
// replicas would fight over the one SOL payload a BMC has (the second activate takes it over). A replica that
// stops leading closes its sessions (release(), called when the controller sees leadership go).
//
// Output is buffered per node and written every flushMs in one insert (store/console.ts keeps the per-node bound
// in that insert's transaction). A write that fails keeps the bytes for the next flush, up to the node's budget.
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import type { ConsoleStore } from '../store/console.ts';
import type { NodeRow } from '../store/nodes.ts';
import type { NodeState } from '../contract/lifecycle.ts';
import { createSolSession, type SolSession, type SolSessionOptions, type SolTarget } from '../bmc/sol.ts';
import type { FleetConfig } from './config.ts';

export type ConsoleConfig = FleetConfig['console'];

/** A node that may be captured: its state and since when (the boot the output belongs to). */
export type ConsoleCandidate = Pick<NodeRow, 'uuid' | 'state' | 'stateSince'>;

/**
 * Who is captured, in order: nodes in one of `states`, by the state's place in that list, then by how long they
 * have been in it, then UUID; the first `max`. Pure, so the choice is tested with plain values.
 */
export function chooseCaptured(nodes: readonly ConsoleCandidate[], states: readonly string[], max: number): ConsoleCandidate[] {
  const rank = new Map<string, number>(states.map((s, i) => [s, i]));
  return nodes
    .filter((n) => rank.has(n.state))
    .sort((a, b) => rank.get(a.state)! - rank.get(b.state)! || a.stateSince.getTime() - b.stateSince.getTime() || a.uuid.localeCompare(b.uuid))
    .slice(0, Math.max(0, max));
}

export interface ConsoleCollectorDeps {
  config: ConsoleConfig;
  /** the nodes in the captured states (the node store's list with a state filter) */
  listNodes: (states: NodeState[]) => Promise<ConsoleCandidate[]>;
  /** a node's SOL target, password decrypted; null when it has no IPMI BMC (Redfish has no SOL here) */
  target: (uuid: string) => Promise<SolTarget | null>;
  store: Pick<ConsoleStore, 'append'>;
  logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  metrics?: Registry;
  /** session factory: bmc/sol.ts by default; tests may pass options through (spawn, backoff) */
  session?: (opts: SolSessionOptions) => SolSession;
}

interface Captured {
  uuid: string;
  bootAt: Date;
  session: SolSession;
  pending: string;
  writing: Promise<void>;
}

export function createConsoleCollector({ config, listNodes, target, store, logger, metrics, session = createSolSession }: ConsoleCollectorDeps) {
  const log = logger;
  const captured = new Map<string, Captured>();
  const registers = metrics ? [metrics] : [];
  const activeGauge = new Gauge({ name: 'bootfarm_console_sessions', help: 'Serial console (IPMI SOL) sessions this replica holds open, by state', labelNames: ['state'] as const, registers });
  const wanted = new Gauge({ name: 'bootfarm_console_waiting_nodes', help: 'Nodes in a captured state not captured because console.maxSessions sessions are open', registers });
  const refreshGauge = () => {
    const by = { active: 0, connecting: 0, backoff: 0 };
    for (const c of captured.values()) {
      const s = c.session.state();
      if (s in by) by[s as keyof typeof by]++;
    }
    for (const [k, v] of Object.entries(by)) activeGauge.set({ state: k }, v);
  };

  async function flush(c: Captured): Promise<void> {
    // one write at a time per node, so chunks stay in order
    c.writing = c.writing.then(async () => {
      if (!c.pending) return;
      const data = c.pending;
      c.pending = '';
      try {
        await store.append(c.uuid, c.bootAt, data);
      } catch (e) {
        // keep the bytes for the next flush, but never more than the node's budget
        c.pending = (data + c.pending).slice(-config.maxBytesPerNode);
        log.warn({ node: c.uuid, err: (e as Error).message }, 'console output not stored; retrying at the next flush');
      }
    });
    return c.writing;
  }
  const timer = setInterval(() => {
    for (const c of captured.values()) void flush(c);
  }, config.flushMs);
  timer.unref();

  async function begin(n: ConsoleCandidate): Promise<void> {
    const t = await target(n.uuid);
    if (!t) return;
    const c: Captured = { uuid: n.uuid, bootAt: n.stateSince, pending: '', writing: Promise.resolve(), session: undefined as unknown as SolSession };
    c.session = session({
      target: t,
      onData: (text) => {
        c.pending += text;
        if (c.pending.length >= 64 * 1024) void flush(c);
      },
      onState: (state, detail) => {
        refreshGauge();
        if (state === 'backoff') log.info({ node: n.uuid, bmc: `${t.address}:${t.port ?? 623}`, why: detail }, 'console session ended; restarting with backoff');
      },
    });
    captured.set(n.uuid, c);
    log.info({ node: n.uuid, state: n.state, bmc: c.session.target }, 'console capture started');
  }

  async function end(c: Captured, why: string): Promise<void> {
    captured.delete(c.uuid);
    await c.session.stop();
    await flush(c);
    log.info({ node: c.uuid, why }, 'console capture stopped');
  }

  return {
    /**
     * Brings the open sessions in line with the fleet: start the chosen nodes not yet captured, stop the ones no
     * longer chosen (or whose boot changed: a new state_since is a new boot, so a new capture).
     */
    async reconcile(): Promise<{ started: string[]; stopped: string[]; waiting: number }> {
      if (!config.enabled) return { started: [], stopped: [], waiting: 0 };
      const candidates = await listNodes(config.states);
      // running sessions keep their place: choose among everyone, but a captured node ranks as if it were first
      const keep = candidates.filter((n) => captured.get(n.uuid)?.bootAt.getTime() === n.stateSince.getTime());
      const others = chooseCaptured(
        candidates.filter((n) => !keep.includes(n)),
        config.states,
        config.maxSessions - Math.min(keep.length, config.maxSessions),
      );
      const chosen = new Map([...chooseCaptured(keep, config.states, config.maxSessions), ...others].map((n) => [n.uuid, n]));
      const stopped: string[] = [];
      for (const c of [...captured.values()]) {
        const n = chosen.get(c.uuid);
        if (n && n.stateSince.getTime() === c.bootAt.getTime()) continue;
        stopped.push(c.uuid);
        await end(c, n ? 'a new boot began' : 'the node left the captured states');
      }
      const started: string[] = [];
      for (const n of chosen.values()) {
        if (captured.has(n.uuid)) continue;
        try {
          await begin(n);
          if (captured.has(n.uuid)) started.push(n.uuid);
        } catch (e) {
          log.warn({ node: n.uuid, err: (e as Error).message }, 'console capture not started');
        }
      }
      const captureStates: ReadonlySet<string> = new Set(config.states);
      const eligible = candidates.filter((n) => captureStates.has(n.state)).length;
      wanted.set(Math.max(0, eligible - chosen.size));
      refreshGauge();
      return { started, stopped, waiting: Math.max(0, eligible - chosen.size) };
    },
    /** Stops every session (this replica no longer leads, or is shutting down); buffered output is written. */
    async release(why = 'leadership lost'): Promise<void> {
      await Promise.all([...captured.values()].map((c) => end(c, why)));
      refreshGauge();
    },
    /** the nodes captured now and their session state */
    sessions: () => [...captured.values()].map((c) => ({ uuid: c.uuid, bootAt: c.bootAt, state: c.session.state(), starts: c.session.starts() })),
    /** writes what is buffered now (tests, shutdown) */
    flushAll: () => Promise.all([...captured.values()].map(flush)).then(() => undefined),
    async stop(): Promise<void> {
      clearInterval(timer);
      await this.release('shutting down');
    },
  };
}

export type ConsoleCollector = ReturnType<typeof createConsoleCollector>;
