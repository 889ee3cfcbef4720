// Reading baseline documents (YAML or JSON; JSON is YAML 1.2) with errors a person can act on: every problem
// names the file, line and column, and the field path ("baselines.yaml:14:18: components[1].minimum: …").
// The yaml package keeps source ranges on its nodes; zod reports issue paths; this file joins the two.
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { Baseline } from '../contract/firmware.ts';
import { findBadString, MAX_DEPTH, yamlDepth } from '../contract/limits.ts';

export interface DocumentIssue {
  line: number | null;
  column: number | null;
  /** field path like components[1].minimum; '' for the document itself */
  path: string;
  message: string;
}

export class BaselineDocumentError extends Error {
  constructor(
    readonly source: string,
    readonly issues: DocumentIssue[],
  ) {
    super(`${source}: invalid baseline document\n${issues.map((i) => `  ${formatIssue(source, i)}`).join('\n')}`);
    this.name = 'BaselineDocumentError';
  }
}

export function formatIssue(source: string, i: DocumentIssue): string {
  const where = i.line !== null ? `${source}:${i.line}:${i.column ?? 1}` : source;
  return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** 1 MiB is far more than any real baseline file; bigger input is refused before parsing. */
export const MAX_DOCUMENT_BYTES = 1 << 20;

/**
 * Parses one file: a single baseline, a list of baselines, or several YAML documents separated by `---`.
 * Throws BaselineDocumentError listing every problem found (syntax, then schema), not just the first.
 */
export function parseBaselineDocument(text: string, source = 'input'): Baseline[] {
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new BaselineDocumentError(source, [{ line: null, column: null, path: '', message: `document is larger than ${MAX_DOCUMENT_BYTES} bytes` }]);
  // the yaml lexer recurses per flow level (1,000 nested `[` ran V8's RegExp compiler out of memory): count first
  if (yamlDepth(text, MAX_DEPTH) > MAX_DEPTH) throw new BaselineDocumentError(source, [{ line: null, column: null, path: '', message: `document nests deeper than ${MAX_DEPTH} levels` }]);
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const issues: DocumentIssue[] = [];
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { line: null, column: null };
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  // parseAllDocuments returns an EmptyStream for empty input, else an array of documents
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    for (const e of doc.errors) issues.push({ ...at(e.pos[0]), path: '', message: e.message.split('\n')[0]! });
  }
  if (issues.length) throw new BaselineDocumentError(source, issues);

  const out: Baseline[] = [];
  const firstLine = new Map<string, number | null>();
  for (const doc of list) {
    // an empty document, e.g. after a trailing ---
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      // toJS throws for what the parser lets through: an alias to no anchor (`a: *b`), too many aliases
      issues.push({ line: null, column: null, path: '', message: (e as Error).message.split('\n')[0]! });
      continue;
    }
    // "\0" and "\ud800" are valid YAML escapes, but no database column holds them
    const bad = findBadString(value);
    if (bad) {
      issues.push({ line: null, column: null, path: bad.path === 'value' ? '' : bad.path, message: bad.problem });
      continue;
    }
    const items: { value: unknown; prefix: (string | number)[] }[] = Array.isArray(value) ? value.map((v, i) => ({ value: v, prefix: [i] })) : [{ value, prefix: [] }];
    for (const item of items) {
      const res = Baseline.safeParse(item.value);
      if (!res.success) {
        for (const iss of res.error.issues) issues.push(issueAt(doc, lineCounter, [...item.prefix, ...(iss.path as (string | number)[])], iss));
        continue;
      }
      const name = res.data.name;
      const pos = locate(doc, [...item.prefix, 'name']);
      if (firstLine.has(name)) {
        issues.push({ ...at(pos), path: formatPath([...item.prefix, 'name']), message: `baseline "${name}" appears twice in this file (first at line ${firstLine.get(name) ?? '?'})` });
        continue;
      }
      firstLine.set(name, at(pos).line);
      out.push(res.data);
    }
  }
  if (issues.length) throw new BaselineDocumentError(source, issues);
  if (out.length === 0) throw new BaselineDocumentError(source, [{ line: null, column: null, path: '', message: 'no baseline in the document' }]);
  return out;
}

function issueAt(doc: Document, lc: LineCounter, path: (string | number)[], iss: z.core.$ZodIssue): DocumentIssue {
  const offset = locate(doc, path);
  const p = offset !== undefined ? lc.linePos(offset) : null;
  const message = iss.message;
  // zod names unknown keys in the issue, not the path: point at the key itself
  if (iss.code === 'unrecognized_keys') {
    const keyPath = [...path, iss.keys[0]!];
    const kOff = locate(doc, keyPath, true);
    const kp = kOff !== undefined ? lc.linePos(kOff) : p;
    return { line: kp?.line ?? null, column: kp?.col ?? null, path: formatPath(keyPath), message: iss.keys.length > 1 ? message : 'unknown field' };
  }
  return { line: p?.line ?? null, column: p?.col ?? null, path: formatPath(path), message };
}

/** Source offset of the deepest node on `path` that exists: the value if the whole path resolves, else the
 * key or collection where it stops (a missing field points at the map that lacks it). */
function locate(doc: Document, path: readonly (string | number)[], keyOfLast = false): number | undefined {
  let node: unknown = doc.contents;
  let offset = (node as YamlNode | null)?.range?.[0];
  for (const [i, seg] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) === String(seg) : String(p.key) === String(seg)));
      if (!pair) return offset;
      const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      offset = keyOffset ?? offset;
      if (keyOfLast && i === path.length - 1) return offset;
      node = pair.value;
      const valueOffset = (node as YamlNode | null)?.range?.[0];
      if (valueOffset !== undefined) offset = valueOffset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) return offset;
      node = item;
      offset = (item as YamlNode | null)?.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}
