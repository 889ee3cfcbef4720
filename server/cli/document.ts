// The file-loading preamble of the commands that send an operator's document (`cabling load`, `firmware baseline
// apply`): read the file, validate it locally with the same parser the server uses, and report mistakes against the
// file's own lines before anything is sent. One place, so both commands fail the same way on the same kind of mistake.
import { readFileSync } from 'node:fs';
import type { CliContext } from './context.ts';

export type ReadFile = (path: string) => string;

/** The real file system; tests inject their own. */
export const readUtf8: ReadFile = (p) => readFileSync(p, 'utf8');

export interface LoadDocumentOptions<T> {
  file: string;
  readFile: ReadFile;
  /** the domain parser (zod inside); throws its own document error on a mistake */
  parse: (text: string) => T;
  /** the operator-facing lines for the parser's document error, or undefined for any other error (a bug: rethrown) */
  explain: (err: unknown) => string | undefined;
}

/** The file's text (sent as it is) and what it parsed to; an unreadable or invalid file is a CliError naming it. */
export function loadDocument<T>(ctx: Pick<CliContext, 'fail'>, { file, readFile, parse, explain }: LoadDocumentOptions<T>): { text: string; doc: T } {
  let text: string;
  try {
    text = readFile(file);
  } catch (e) {
    throw ctx.fail(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return { text, doc: parse(text) };
  } catch (e) {
    const lines = explain(e);
    if (lines !== undefined) throw ctx.fail(lines);
    throw e;
  }
}
