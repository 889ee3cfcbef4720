// HTTP request metrics (issue 17 item 6): requests and their duration by route class and status class. The route
// class is a closed set derived from the path prefix (never the path itself: it carries UUIDs and digests), so
// the series count stays fixed however many nodes boot.
import { Counter, Histogram, type Registry } from 'prom-client';

export const ROUTE_CLASSES = ['ipxe', 'agent', 'images', 'api', 'ui', 'metrics', 'health', 'other'] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

/** which part of the product a path belongs to: the boot path (ipxe, images, agent) apart from the admin surface */
export function routeClass(path: string): RouteClass {
  if (path === '/boot.ipxe' || path.startsWith('/ipxe/')) return 'ipxe';
  if (path.startsWith('/api/v1/agent/')) return 'agent';
  if (path.startsWith('/images/')) return 'images';
  if (path.startsWith('/api/')) return 'api';
  if (path === '/ui' || path.startsWith('/ui/')) return 'ui';
  if (path === '/metrics') return 'metrics';
  if (path === '/healthz' || path === '/readyz') return 'health';
  return 'other';
}

/** 2xx … 5xx */
const statusClass = (status: number): string => `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx`;

/** iPXE scripts and agent calls answer in milliseconds; image bodies (counted to the response, not the last byte) too */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The recorder the app's access log calls once per request. One per registry: a second app on it shares the series. */
export function createHttpMetrics(registry: Registry): (path: string, status: number, seconds: number) => void {
  const requests = (registry.getSingleMetric('bootfarm_http_requests_total') as Counter<'route' | 'status'> | undefined) ?? new Counter({ name: 'bootfarm_http_requests_total', help: 'HTTP requests by route class (ipxe, agent, images, api, ui, metrics, health, other) and status class', labelNames: ['route', 'status'] as const, registers: [registry] });
  const duration =
    (registry.getSingleMetric('bootfarm_http_request_duration_seconds') as Histogram<'route'> | undefined) ??
    new Histogram({ name: 'bootfarm_http_request_duration_seconds', help: 'HTTP request handling time until the response starts (an image body streams on afterwards), by route class', labelNames: ['route'] as const, buckets: BUCKETS, registers: [registry] });
  for (const route of ROUTE_CLASSES) duration.zero({ route });
  return (path, status, seconds) => {
    const route = routeClass(path);
    requests.inc({ route, status: statusClass(status) });
    duration.observe({ route }, seconds);
  };
}
