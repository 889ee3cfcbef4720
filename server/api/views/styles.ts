// The dashboard's one stylesheet, served as a file (/ui/static/ui.<hash>.css) so that the pages' CSP can say
// style-src 'self' without 'unsafe-inline': no <style> element, no style attribute anywhere. Colours that depend
// on data (node states, firmware states) are classes; proportional bars are inline SVG whose widths are
// geometry attributes, not styles. The file name carries a content hash, so it can be cached for a year.
import { createHash } from 'node:crypto';
import { NODE_STATES } from '../../contract/lifecycle.ts';

export const STATE_COLORS: Record<string, string> = {
  discovered: '#90a4ae', inspecting: '#4fc3f7', 'firmware-updating': '#ffb74d', ready: '#81c784', provisioning: '#64b5f6',
  active: '#2e7d32', failed: '#e53935', rebuilding: '#fb8c00', quarantined: '#8e24aa', maintenance: '#6d4c41', retired: '#bdbdbd',
};

/** Firmware compliance states (the /ui/firmware page), in the order its bars draw them. */
export const FIRMWARE_COLORS = { compliant: '#2e7d32', updating: '#1565c0', outdated: '#ef6c00', failed: '#c62828', unknown: '#757575', unmanaged: '#b0bec5' } as const;

const stateRules = [
  ...NODE_STATES.map((s) => `.st-${s}{background:${STATE_COLORS[s] ?? '#757575'};fill:${STATE_COLORS[s] ?? '#757575'}}`),
  ...Object.entries(FIRMWARE_COLORS).map(([s, c]) => `.fw-${s}{background:${c};fill:${c}}`),
].join('\n');

export const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#212121}
nav{display:flex;gap:14px;align-items:baseline;border-bottom:1px solid #e0e0e0;padding-bottom:8px}nav .who{margin-left:auto;color:#757575;font-size:12px}
h1{font-size:22px;margin:12px 0 12px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e0e0e0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}code,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;background:#757575}
svg.bar{display:block;width:100%;height:22px;border-radius:4px;margin:6px 0 4px;background:#eceff1}
.legend span{margin-right:14px;font-size:12px}.warn{color:#c62828}.muted{color:#757575}.ok{color:#2e7d32}
.alert{border:1px solid #e57373;background:#ffebee;padding:8px 12px;border-radius:4px}.notice{border:1px solid #81c784;background:#e8f5e9;padding:8px 12px;border-radius:4px}
dl{display:grid;grid-template-columns:180px 1fr;gap:4px 12px}dt{color:#616161}
form.filters,form.act{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:12px 0;padding:10px 12px;background:#f5f5f5;border-radius:6px}
form.filters label,form.act label{display:flex;flex-direction:column;font-size:12px;color:#555}form.inline{display:inline}
.pager{display:flex;gap:16px;margin:10px 0}.console{background:#263238;color:#eceff1;padding:10px;border-radius:4px;min-height:3em;white-space:pre-wrap}
.meta{color:#616161}.big{font-size:28px;font-weight:600}
.bar-row{display:grid;grid-template-columns:260px 1fr 340px;gap:12px;align-items:center;margin:6px 0}
.bar-row svg.bar{height:18px;margin:0}.bar-label{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.change{font-family:ui-monospace,monospace;white-space:nowrap}.node{font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}.required{color:#2e7d32}.current{color:#c62828}
.detail,.note{color:#757575;font-family:system-ui,sans-serif;font-size:12px;white-space:normal}
.keys span{display:inline-block;margin-right:12px}.keys i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
${stateRules}
`;

/** Where the stylesheet is served: its name changes with its content, so browsers may cache it forever. */
export const CSS_PATH = `/ui/static/ui.${createHash('sha256').update(CSS).digest('hex').slice(0, 12)}.css`;
