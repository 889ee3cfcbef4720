// Heartbeats coalesced in memory (issue 15 item 4). A steady-state heartbeat (an active node reporting the image
// it was already recorded with) changes nothing but last_seen/last_heartbeat, and rewriting the wide nodes row for
// each one made heartbeats the hottest write of a fleet. Here each replica keeps the newest beat per node and
// writes them all every `flushSeconds` in one statement (NodeStore.flushBeats), which also closes the stage-1
// attempts guessed open for those nodes (what recordAgentUse does for an unbuffered call).
//
// The bound: what the database (and so the fleet leader, on any replica) sees of a node's last heartbeat is at
// most flushSeconds + one flush behind. The fleet fails a node after interval × missed without a heartbeat (90 s by
// default), /ipxe counts an active node as gone after interval × goneAfterMissedBeats (60 s); main refuses a
// flushSeconds that is not well below both (fleet/config.ts). A crashed replica loses at most flushSeconds of beats:
// each node beats again within its interval. stop() flushes what is pending (graceful shutdown).
// flushSeconds 0 writes each beat through at once (the previous behaviour; tests and the benchmark's baseline).
import type { NodeStore } from '../store/nodes.ts';

export interface BeatBuffer {
  /** a heartbeat of `uuid` at `at`; resolves once it is buffered (or written, with flushSeconds 0) */
  beat(uuid: string, at: Date): Promise<void>;
  /** writes every buffered beat now; concurrent calls share one flush */
  flush(): Promise<void>;
  /** beats waiting for the next flush */
  pending(): number;
  /** true when beats are written through (flushSeconds 0) */
  readonly writeThrough: boolean;
  start(): void;
  /** stops the timer and flushes what is pending */
  stop(): Promise<void>;
}

export interface BeatBufferOptions {
  store: Pick<NodeStore, 'flushBeats'>;
  flushSeconds: number;
  log?: { warn(obj: object, msg: string): void };
  /** told about every flush: how many beats, how long it took (ms) */
  onFlush?: (beats: number, ms: number) => void;
}

export function createBeatBuffer({ store, flushSeconds, log, onFlush }: BeatBufferOptions): BeatBuffer {
  let buf = new Map<string, Date>();
  let inFlight: Promise<void> | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;

  async function writeOut(): Promise<void> {
    if (buf.size === 0) return;
    const batch = buf;
    buf = new Map();
    const t0 = performance.now();
    try {
      await store.flushBeats([...batch].map(([uuid, at]) => ({ uuid, at })));
      onFlush?.(batch.size, performance.now() - t0);
    } catch (e) {
      // keep them for the next flush, unless a newer beat of the node arrived meanwhile
      for (const [uuid, at] of batch) if (!buf.has(uuid)) buf.set(uuid, at);
      log?.warn({ err: (e as Error).message, beats: batch.size }, 'heartbeat flush failed; retrying at the next flush');
      throw e;
    }
  }

  const flush = (): Promise<void> => {
    // a flush already running: wait for it, then write what arrived meanwhile
    inFlight ??= writeOut().finally(() => (inFlight = null));
    return inFlight;
  };

  return {
    writeThrough: flushSeconds === 0,
    async beat(uuid, at) {
      if (flushSeconds === 0) return store.flushBeats([{ uuid, at }]);
      const prev = buf.get(uuid);
      if (!prev || prev < at) buf.set(uuid, at);
    },
    flush,
    pending: () => buf.size,
    start() {
      if (flushSeconds === 0 || timer) return;
      timer = setInterval(() => void flush().catch(() => {}), flushSeconds * 1000);
      timer.unref?.();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await inFlight?.catch(() => {});
      await flush();
    },
  };
}
