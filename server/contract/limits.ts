// Limits every parser of untrusted text shares (part of the wire contract: what a request may carry): nesting depth and the characters a value may hold. Pure
// functions, no imports, so the API edge, the domain's document parsers and the configuration loader use the
// same rules.
//
// Why depth: JSON.parse, the `yaml` package, zod and drizzle's jsonb encoding all recurse. A 2 KB YAML document of
// 1,000 nested `[` made the yaml lexer's RegExp compiler run out of memory and killed the process; a 5,000-deep
// JSON body overflowed the stack later on. A linear scan of the text before parsing costs microseconds per KB.
//
// Why characters: PostgreSQL text cannot hold U+0000 (the wire protocol ends strings at NUL) and jsonb refuses a
// lone UTF-16 surrogate (`\ud800` without its pair). Either one reaching the database is a 500 after part of a
// request was written; rejecting it at the edge with the field's name is a 400 that changes nothing.

/** Deepest nesting of arrays/objects a request body or document may have. Real documents stay below 10. */
export const MAX_DEPTH = 64;

/** Depth of the deepest `[`/`{` nesting in JSON text, skipping string contents; stops counting past `limit`. */
export function jsonDepth(text: string, limit = MAX_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return max;
}

/** A conservative estimate of the nesting depth of a YAML stream (YAML 1.2 §7.4 flow collections, §8.2 block
 * collections): flow brackets outside quotes and comments, plus, per line, the indentation and the compact
 * `- ` / `? ` indicators that open a block level each. It may over-count (indentation of 4 counts as 4), never
 * under-count, so a limit well above real documents rejects only hostile or absurd input. */
export function yamlDepth(text: string, limit = MAX_DEPTH): number {
  let max = 0;
  let flow = 0;
  let quote = 0; // 0, 0x22 (") or 0x27 (')
  let lineStart = true;
  let col = 0;
  let blockDepth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x0a) {
      lineStart = true;
      col = 0;
      blockDepth = 0;
      continue;
    }
    if (quote) {
      if (quote === 0x22 && ch === 0x5c) i++;
      else if (ch === quote) {
        if (quote === 0x27 && text.charCodeAt(i + 1) === 0x27) i++; // '' is an escaped quote
        else quote = 0;
      }
      continue;
    }
    if (lineStart) {
      // leading spaces, then any run of "- " / "? " / ": " indicators, each one more block level
      if (ch === 0x20) {
        col++;
        continue;
      }
      if ((ch === 0x2d || ch === 0x3f || ch === 0x3a) && (text.charCodeAt(i + 1) === 0x20 || text.charCodeAt(i + 1) === 0x0a || i + 1 === text.length)) {
        blockDepth++;
        continue;
      }
      lineStart = false;
      const d = Math.ceil(col / 2) + blockDepth;
      if (d > max) max = d;
      if (max > limit) return max;
    }
    if (ch === 0x23 && (i === 0 || text.charCodeAt(i - 1) === 0x20 || text.charCodeAt(i - 1) === 0x09)) {
      // a comment runs to the end of the line
      while (i + 1 < text.length && text.charCodeAt(i + 1) !== 0x0a) i++;
      continue;
    }
    if (ch === 0x22 || ch === 0x27) quote = ch;
    else if (ch === 0x5b || ch === 0x7b) {
      flow++;
      const d = Math.ceil(col / 2) + blockDepth + flow;
      if (d > max) max = d;
      if (max > limit) return max;
    } else if ((ch === 0x5d || ch === 0x7d) && flow > 0) flow--;
  }
  return max;
}

// a high surrogate not followed by a low one, or a low one not preceded by a high one
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What is wrong with a string for storage and display, or null. */
export function badCharacters(s: string): string | null {
  if (s.includes('\0')) return 'contains a NUL byte (U+0000)';
  if (LONE_SURROGATE.test(s)) return 'contains invalid UTF-16 (a lone surrogate)';
  return null;
}

/** The first string or object key in `value` (walked iteratively: no recursion on hostile depth) that holds a NUL
 * or a lone surrogate, with its path like `facts.nics[2].name`. */
export function findBadString(value: unknown, root = ''): { path: string; problem: string } | null {
  const stack: [unknown, string][] = [[value, root]];
  let seen = 0;
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (++seen > 1_000_000) return null; // bounded by the body limit long before this
    if (typeof v === 'string') {
      const p = badCharacters(v);
      if (p) return { path: path || 'value', problem: p };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const kp = path ? `${path}.${k}` : k;
        const p = badCharacters(k);
        if (p) return { path: kp, problem: `key ${p}` };
        stack.push([x, kp]);
      }
    }
  }
  return null;
}

/** Depth of an already parsed value, iteratively; stops past `limit`. */
export function valueDepth(value: unknown, limit = MAX_DEPTH): number {
  const stack: [unknown, number][] = [[value, 0]];
  let max = 0;
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > limit) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push([x, d + 1]);
  }
  return max;
}
