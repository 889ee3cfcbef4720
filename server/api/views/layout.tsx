// The dashboard's frame and small pieces every page uses, in hono's JSX: every value placed in text or an
// attribute is escaped by the renderer (no hand-written escaping anywhere in the UI), and nothing here emits a
// style attribute or a <style> element (the CSP allows only the served stylesheet, views/styles.ts).
import type { Child, PropsWithChildren } from 'hono/jsx';
import { CSS_PATH } from './styles.ts';

export interface Viewer {
  name: string;
  role: string;
}

/** A whole page as the string c.html() sends, with its doctype. */
export async function documentOf(page: Child): Promise<string> {
  const node = await page;
  const text = node && typeof node === 'object' && !Array.isArray(node) ? await node.toString() : String(node ?? '');
  return `<!doctype html>${text}`;
}

export function Page({ title, viewer, nav = true, children }: PropsWithChildren<{ title: string; viewer?: Viewer | null; nav?: boolean }>) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · bootfarm`}</title>
        <link rel="stylesheet" href={CSS_PATH} />
        {/* no favicon request (it would be a 404 in the console on every page) */}
        <link rel="icon" href="data:," />
      </head>
      <body>
        {nav && (
          <nav>
            <a href="/ui">Fleet</a>
            <a href="/ui/images">Images</a>
            <a href="/ui/firmware">Firmware</a>
            <a href="/ui/networks">Networks</a>
            <a href="/api/v1/openapi.json">API</a>
            <a href="/ui/logout">Log out</a>
            {viewer && <span class="who">{`${viewer.name} (${viewer.role})`}</span>}
          </nav>
        )}
        <h1>{title}</h1>
        {children}
      </body>
    </html>
  );
}

export const StatePill = ({ state }: { state: string }) => <span class={`pill st-${state}`}>{state}</span>;

export interface Segment {
  key: string;
  count: number;
  /** class giving the segment its colour (st-<state>, fw-<state>) */
  cls: string;
  title: string;
  /** extra data-* attributes for tests and styling */
  data?: Record<string, string>;
}

/** A stacked, proportional bar as inline SVG: widths are geometry, so no style attribute is needed. */
export function StackedBar({ segments, label }: { segments: Segment[]; label: string }) {
  const total = segments.reduce((a, s) => a + s.count, 0) || 1;
  let x = 0;
  return (
    <svg class="bar" viewBox="0 0 1000 10" preserveAspectRatio="none" role="img" aria-label={label}>
      {segments.map((s) => {
        const width = (s.count / total) * 1000;
        const rect = (
          <rect class={s.cls} x={x.toFixed(2)} y="0" width={width.toFixed(2)} height="10" {...Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [`data-${k}`, v]))}>
            <title>{s.title}</title>
          </rect>
        );
        x += width;
        return rect;
      })}
    </svg>
  );
}

export function ago(d: Date | string | null | undefined, now: Date): string {
  if (!d) return '—';
  const s = Math.round((now.getTime() - new Date(d).getTime()) / 1000);
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

export const isoMinute = (d: Date | string) => new Date(d).toISOString().replace('T', ' ').slice(0, 19);

export const labelText = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(' ');

/** The hidden field every state-changing form carries (server/api/ui-forms.ts checks it). */
export const CsrfField = ({ token }: { token: string }) => <input type="hidden" name="_csrf" value={token} />;

/** An outcome line above a page: what the last form did, or why it was refused. */
export function Flash({ ok, error }: { ok?: string | null; error?: string | null }) {
  if (error) return <p class="alert" role="alert" id="flash-error">{error}</p>;
  if (ok) return <p class="notice" role="status" id="flash-ok">{ok}</p>;
  return null;
}

/** A refusal or failure on a dashboard route, as a page (the JSON API answers the same error as JSON). */
export function ErrorPage({ status, code, message, viewer }: { status: number; code: string; message: string; viewer?: Viewer | null }) {
  return (
    <Page title={`Error ${status}`} viewer={viewer}>
      <p class="alert" role="alert" id="error" data-code={code}>{message}</p>
      <p><a href="/ui">Back to the fleet</a></p>
    </Page>
  );
}

export const renderErrorPage = (props: Parameters<typeof ErrorPage>[0]) => documentOf(<ErrorPage {...props} />);
