// BMC power-on pacing (issue 15 item 2). A fleet-wide rebuild or a bulk power action that switched every machine
// on at once would turn into a boot storm (and an inrush current on the PDUs). Every power-on, cycle and reset
// (the commands after which a node boots) goes through one token bucket per replica: `burst` at once, then
// `perSecond`, in waves. Callers are served in the order they asked: each takes a token or reserves the next one
// and sleeps until it is due. Power off, soft off, NMI and identify are not paced (nothing boots after them).
import type { Bmc, PowerAction } from './types.ts';
import type { BmcFactory } from './index.ts';

export interface PowerPacer {
  /** resolves when this power-on may go out */
  take(): Promise<void>;
  /** power-ons waiting for their turn */
  waiting(): number;
}

export interface PowerPacerOptions {
  /** power-ons per second in the long run; 0: no pacing */
  perSecond: number;
  /** how many may go out at once after a quiet spell */
  burst: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function createPowerPacer({ perSecond, burst, now = Date.now, sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }: PowerPacerOptions): PowerPacer {
  let tokens = burst;
  let last = now();
  let waiting = 0;
  return {
    async take() {
      if (perSecond <= 0) return;
      const t = now();
      tokens = Math.min(burst, tokens + ((t - last) * perSecond) / 1000);
      last = t;
      tokens -= 1;
      // a negative balance is the queue: this caller's token comes when the balance would reach zero again
      if (tokens >= 0) return;
      waiting++;
      try {
        await sleep(Math.ceil((-tokens * 1000) / perSecond));
      } finally {
        waiting--;
      }
    },
    waiting: () => waiting,
  };
}

const BOOTS: ReadonlySet<PowerAction> = new Set<PowerAction>(['on', 'cycle', 'reset']);

/** The same BMCs, with every power action a node boots after waiting for the pacer. */
export function pacedBmcFactory(factory: BmcFactory, pacer: PowerPacer): BmcFactory {
  return (target) => {
    const b = factory(target);
    const paced: Bmc = Object.create(b) as Bmc;
    paced.power = async (action: PowerAction) => {
      if (BOOTS.has(action)) await pacer.take();
      return b.power(action);
    };
    return paced;
  };
}
