// The image area's metrics (issue 17 item 6): the cache in front of the store (hits, misses, evictions, size),
// the store behind it (fetches, their latency, bytes, errors) and what booting nodes were sent, from where.
// The cache keeps plain numbers read at scrape time; fills and bodies are counted through hooks (one call per
// fill or per response, never per chunk). Labels are closed sets; never a digest or an image name.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BlobCache, FillResult } from './cache.ts';
import type { ServedFrom } from './serve.ts';
import { scrapeCounter, type Series } from '../metrics.ts';

/** a kernel (10 MB) from RGW on a LAN takes well under a second, an initrd (hundreds of MB) several */
const FETCH_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface ImageMetrics {
  /** BlobCacheOptions.onCorrupt */
  onCorrupt(): void;
  /** BlobCacheOptions.onFill */
  onFill(result: FillResult, seconds: number, bytes: number): void;
  /** ImageServeOptions.onServed */
  onServed(source: ServedFrom, bytes: number): void;
  /** the scrape-time series read from the cache's counters */
  attach(cache: Pick<BlobCache, 'stats'>, maxBytes: number): void;
}

export function createImageMetrics(registry: Registry): ImageMetrics {
  const corrupt = new Counter({ name: 'bootfarm_image_corrupt_blobs_total', help: 'Blobs from the image store whose sha256 did not match their name (not cached, not served)', registers: [registry] });
  const fetch = new Histogram({ name: 'bootfarm_image_store_fetch_duration_seconds', help: 'Cache fills from the image store (S3/RGW or the local store): first request to the last byte verified, by result (ok, corrupt, failed)', labelNames: ['result'], buckets: FETCH_BUCKETS, registers: [registry] });
  const served = new Counter({ name: 'bootfarm_image_served_bytes_total', help: 'Image bytes sent to nodes (Content-Length of GET bodies started), by source: memory (RAM tier), disk (cache), fill (a miss streamed while it is fetched from the store)', labelNames: ['source'], registers: [registry] });
  for (const result of ['ok', 'corrupt', 'failed']) fetch.zero({ result });
  const sources = { memory: served.labels({ source: 'memory' }), disk: served.labels({ source: 'disk' }), fill: served.labels({ source: 'fill' }) };
  for (const c of Object.values(sources)) c.inc(0);
  return {
    onCorrupt: () => corrupt.inc(),
    onFill: (result, seconds) => fetch.observe({ result }, seconds),
    onServed: (source, bytes) => sources[source].inc(bytes),
    attach(cache, maxBytes) {
      const s = cache.stats;
      const gauge = (name: string, help: string, pick: () => number) => new Gauge({ name, help, registers: [registry], collect() { this.set(pick()); } });
      const counter = (name: string, help: string, labelNames: string[], read: () => Series) => scrapeCounter(registry, { name, help, labelNames, read });
      // the pre-issue-17 names, kept for existing dashboards and alerts
      gauge('bootfarm_image_cache_bytes', 'Bytes in the image cache', () => s.bytes);
      gauge('bootfarm_image_cache_hits', 'Image requests served from the cache (since start)', () => s.hits);
      gauge('bootfarm_image_cache_misses', 'Image requests that started or joined a fill (since start)', () => s.misses);
      gauge('bootfarm_image_store_gets', 'GETs sent to the image store to fill the cache (since start)', () => s.storeGets);
      gauge('bootfarm_image_cache_max_bytes', 'The image cache size cap (images.cache.maxBytes); least recently used blobs are evicted past it', () => maxBytes);
      gauge('bootfarm_image_cache_entries', 'Blobs in the image cache', () => s.entries);
      gauge('bootfarm_image_cache_memory_bytes', 'Bytes of hot blobs held in RAM by the cache', () => s.memoryBytes);
      counter('bootfarm_image_cache_requests_total', 'Image body requests by cache result: hit (cached, verified) or miss (started or joined a fill from the store)', ['result'], () => [
        [{ result: 'hit' }, s.hits],
        [{ result: 'miss' }, s.misses],
      ]);
      counter('bootfarm_image_cache_evictions_total', 'Blobs evicted from the image cache (least recently used, past images.cache.maxBytes)', [], () => [[{}, s.evictions]]);
      counter('bootfarm_image_store_fetches_total', 'GETs sent to the image store to fill the cache (one per miss, however many nodes wait on it)', [], () => [[{}, s.storeGets]]);
      counter('bootfarm_image_store_fetched_bytes_total', 'Bytes received from the image store by cache fills', [], () => [[{}, s.storeBytes]]);
      counter('bootfarm_image_store_errors_total', 'Image store GETs that failed: not_found (no such blob), unavailable (store unreachable), broken_stream (the body stopped midway)', ['kind'], () => [
        [{ kind: 'not_found' }, s.storeNotFound],
        [{ kind: 'unavailable' }, s.storeUnavailable],
        [{ kind: 'broken_stream' }, s.storeBroken],
      ]);
    },
  };
}
