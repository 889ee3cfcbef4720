// Prometheus helpers shared by every layer that exposes metrics (the DHCP and TFTP services, the image area).
// A base module (like log.ts): it imports only prom-client, so the image area may use it as well as the services.
import { Counter, type Registry } from 'prom-client';

/** Every series of a scrape-time counter: its labels and the running total the owning code keeps. */
export type Series = [labels: Record<string, string>, value: number][];

export interface ScrapeCounterOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** called at every scrape; returns each series with its total since start */
  read: () => Series;
}

/**
 * A counter whose values are read at scrape time from plain numbers the protocol or cache code keeps (boot/
 * imports nothing from server/, and a packet or a request should cost an increment, never a label object).
 * Each collect resets the counter and sets every series to its total again, so the exposed value is exactly
 * what the source holds.
 */
export function scrapeCounter(registry: Registry, { name, help, labelNames = [], read }: ScrapeCounterOptions): Counter {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}
