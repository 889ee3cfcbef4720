// The boot budget of one replica (issue 15 item 2): how many stage-1 image transfers (kernel and initrd bodies in
// flight from the image routes, serve.ts) and how many registrations it works on at once. Counted in memory, per
// replica — each replica protects its own event loop and uplink; with R replicas behind a balancer the fleet's
// budget is R × these. Over budget:
//   /ipxe/<uuid>    answers a script that sleeps a jittered interval and chains back (server/api/boot.ts), instead
//                   of starting one more kernel download; no boot attempt is opened for it
//   register        503 with a jittered Retry-After; the agent's retry honours it (agent/retry.ts)
// The image routes themselves never refuse: a node that was admitted finishes its download.
// A slot is released when its response ends, however it ends (finished, client gone, socket destroyed).
//
// /ipxe admits a node a moment before its kernel request arrives, so an admission holds a reservation until a
// transfer starts (taking the oldest reservation) or reserveMs passes; without that, a burst of /ipxe requests
// would all be admitted before the first download began.

export interface BootBudgetOptions {
  /** image bodies in flight at once; 0: no limit */
  transfers: number;
  /** registrations in progress at once; 0: no limit */
  registrations: number;
  /** base of the jittered wait told to a refused node: uniform in [retrySeconds, 2 × retrySeconds) */
  retrySeconds: number;
  /** how long an /ipxe admission waits for its kernel request */
  reserveMs?: number;
  now?: () => number;
  /** 0 ≤ x < 1; injected so tests are deterministic */
  random?: () => number;
}

export interface BootBudget {
  /** an image body starts: the returned function releases the slot (idempotent) */
  transfer(): () => void;
  /** /ipxe: room for one more stage-1 download? Takes a reservation when there is */
  admitBoot(): boolean;
  /** a registration starts: a release function, or null over budget */
  register(): (() => void) | null;
  /** seconds a refused node waits (jittered, so refused nodes do not return in lock-step) */
  retrySeconds(): number;
  stats(): { transfers: number; reserved: number; registrations: number; refusedBoots: number; refusedRegistrations: number };
}

export function createBootBudget({ transfers, registrations, retrySeconds, reserveMs = 10_000, now = Date.now, random = Math.random }: BootBudgetOptions): BootBudget {
  let inTransfer = 0;
  let inRegister = 0;
  let refusedBoots = 0;
  let refusedRegistrations = 0;
  /** expiry times of /ipxe admissions whose download has not started, oldest first */
  const reserved: number[] = [];
  const prune = () => {
    const t = now();
    while (reserved.length && reserved[0]! <= t) reserved.shift();
  };
  const once = (f: () => void) => {
    let done = false;
    return () => {
      if (!done) (done = true), f();
    };
  };
  return {
    transfer() {
      prune();
      reserved.shift();
      inTransfer++;
      return once(() => inTransfer--);
    },
    admitBoot() {
      if (transfers === 0) return true;
      prune();
      if (inTransfer + reserved.length >= transfers) {
        refusedBoots++;
        return false;
      }
      reserved.push(now() + reserveMs);
      return true;
    },
    register() {
      if (registrations > 0 && inRegister >= registrations) {
        refusedRegistrations++;
        return null;
      }
      inRegister++;
      return once(() => inRegister--);
    },
    retrySeconds: () => retrySeconds + Math.floor(random() * retrySeconds),
    stats: () => {
      prune();
      return { transfers: inTransfer, reserved: reserved.length, registrations: inRegister, refusedBoots, refusedRegistrations };
    },
  };
}
