// `bootfarm image …` commands. Like the rest of the CLI they talk to a running server's admin API; uploads
// use the resumable protocol of server/api/images.ts (state in the database, so any replica continues it), in the
// chunk size the server names (with S3, its part size: at least 5 MiB), each chunk with its sha256.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, runArea, type CliContext, type ProgressStream } from './context.ts';
import type { Call } from './http.ts';
import { sha256File } from '../images/pipeline.ts';
import { retry, type Sleep } from '../contract/backoff.ts';
import { ByteReader, checkCmdline, checkInitrd, checkKernel, ImagePartError } from '../images/parts.ts';

/** Kept for callers that catch the image commands' errors by name; it is the CLI's error (exit code 2). */
export class ImageCliError extends CliError {}

export interface ImageCliOptions {
  url: string;
  token?: string;
  /** PEM CA bundle for an https admin listener */
  ca?: string;
  /** stdout lines */
  out: (line: string) => void;
  /** progress (stderr): a redrawn bar on a TTY, one line per 10 % otherwise */
  progress?: ProgressStream;
  fetchImpl?: typeof fetch;
  /** waits between retries of an upload chunk (tests pass a recorder) */
  sleep?: Sleep;
}

/** A chunk that failed on the way (no answer, or a 5xx while the server restarts) is sent again, with the project's
 * backoff (8 attempts: up to ~35 s, longer than the server's 15 s upload lease); a 4xx is the caller's mistake and
 * ends the push. */
const CHUNK_RETRY = { baseMs: 500, capMs: 10_000, jitter: 'full', attempts: 8 } as const;
const transient = (e: unknown) => {
  const status = (e as { status?: number }).status;
  // a chunk damaged on the way (its Upload-Checksum did not match) is read from the file and sent again; another
  // client holding the upload for a moment (upload_busy: a server-side lease of at most 15 s) is waited out
  const code = (e as { body?: { error?: { code?: string } } }).body?.error?.code;
  return status === undefined || status >= 500 || code === 'checksum_mismatch' || code === 'upload_busy';
};

const KERNEL_NAMES = /^(vmlinuz|bzImage|kernel|linux)([-.].*)?$/;
const INITRD_NAMES = /^(initrd|initramfs|rootfs)([-.].*)?$/;

/** DIR (with vmlinuz*, initrd* and optionally a `cmdline` file) or two files KERNEL INITRD. */
export async function findImageFiles(paths: string[]): Promise<{ kernel: string; initrd: string; cmdline?: string }> {
  if (paths.length === 2) return { kernel: paths[0]!, initrd: paths[1]! };
  if (paths.length !== 1) throw new ImageCliError('give a directory, or the kernel and initrd files');
  const dir = paths[0]!;
  if (!(await stat(dir)).isDirectory()) throw new ImageCliError(`${dir} is not a directory; give a directory or KERNEL INITRD`);
  const names = (await readdir(dir)).sort();
  const kernel = names.filter((n) => KERNEL_NAMES.test(n));
  const initrd = names.filter((n) => INITRD_NAMES.test(n));
  if (kernel.length !== 1 || initrd.length !== 1)
    throw new ImageCliError(`${dir} must hold exactly one kernel (vmlinuz*) and one initrd (initrd*/initramfs*); found kernel: ${kernel.join(', ') || 'none'}, initrd: ${initrd.join(', ') || 'none'}`);
  let cmdline: string | undefined;
  try {
    cmdline = (await readFile(join(dir, 'cmdline'), 'utf8')).trim();
  } catch {
    /* optional */
  }
  return { kernel: join(dir, kernel[0]!), initrd: join(dir, initrd[0]!), cmdline };
}

const MiB = (n: number) => (n / 1048576).toFixed(1);
const BAR = { format: '{label} [{bar}] {percentage}% {done}/{size} MiB', barCompleteChar: '#', barIncompleteChar: '-', barsize: 30, hideCursor: false, autopadding: true, autopaddingChar: ' ' } as const;

/** Upload progress from cli-progress: on a TTY its redrawn single bar; elsewhere (logs, CI) the same line
 * printed once per 10 % (cli-progress's own non-TTY mode prints on a timer instead). */
function progressBar(stream: ProgressStream | undefined, label: string, size: number) {
  const payload = (done: number) => ({ label: label.padEnd(7), done: MiB(done), size: MiB(size) });
  if (stream?.isTTY) {
    const bar = new cliProgress.SingleBar({ ...BAR, stream: stream as NodeJS.WritableStream, etaBuffer: 20 });
    return {
      start: (done: number) => bar.start(size, done, payload(done)),
      update: (done: number) => bar.update(done, payload(done)),
      note: (line: string) => stream.write(`\n${line}\n`),
      stop: () => bar.stop(),
    };
  }
  let last = -1;
  const line = (done: number) => {
    const step = Math.floor((size ? done / size : 1) * 10);
    if (step === last) return;
    last = step;
    const progress = size ? done / size : 1;
    const options = { ...BAR, barCompleteString: '#'.repeat(BAR.barsize), barIncompleteString: '-'.repeat(BAR.barsize), barGlue: '' };
    const text = cliProgress.Format.Formatter(options as never, { progress, eta: 0, startTime: 0, stopTime: 0, total: size, value: done, maxWidth: 200 } as never, payload(done));
    stream?.write(`${text}\n`);
  };
  return { start: line, update: line, note: (l: string) => stream?.write(`${l}\n`), stop: () => {} };
}

/** Upload one file by digest, resuming from what the server already has. */
export async function uploadBlob(call: Call, o: { progress?: ProgressStream; sleep?: Sleep }, label: string, path: string, digest: string, size: number): Promise<{ resumedFrom: number }> {
  const status = await call<{ offset: number; complete: boolean; chunkBytes: number }>('GET', `/api/v1/images/blobs/${digest}/upload`);
  let offset = status.complete ? size : status.offset;
  const resumedFrom = offset;
  const bar = progressBar(o.progress, label, size);
  bar.start(offset);
  if (!status.complete) {
    const fh = await open(path, 'r');
    try {
      while (offset < size) {
        const len = Math.min(status.chunkBytes, size - offset);
        const buf = Buffer.allocUnsafe(len);
        await fh.read(buf, 0, len, offset);
        try {
          const at = offset;
          const sum = `sha256 ${createHash('sha256').update(buf).digest('base64')}`;
          const r = await retry(() => call<{ offset: number }>('PATCH', `/api/v1/images/blobs/${digest}/upload`, buf, { 'upload-offset': String(at), 'upload-length': String(size), 'upload-checksum': sum }), {
            ...CHUNK_RETRY,
            retryable: transient,
            sleep: o.sleep ?? ((ms) => new Promise((res) => setTimeout(res, ms))),
            onRetry: (err, n, ms) => bar.note(`${label}: ${(err as Error).message}; retry ${n + 1} in ${ms} ms`),
          });
          offset = r.offset;
        } catch (e) {
          // The server holds a different amount (an earlier run died mid-chunk): continue from its offset.
          const body = (e as { body?: { error?: { code?: string; details?: { offset?: number } } } }).body;
          if (body?.error?.code === 'offset_mismatch' && typeof body.error.details?.offset === 'number') offset = body.error.details.offset;
          else throw e;
        }
        bar.update(offset);
      }
    } finally {
      bar.stop();
      await fh.close();
    }
    // every byte is there; if the replica that took the last chunk died before assembling the blob, asking
    // for the status makes the one we reach finish it
    const done = await call<{ complete: boolean; offset: number }>('GET', `/api/v1/images/blobs/${digest}/upload`);
    if (!done.complete) throw new ImageCliError(`${label}: the server has ${done.offset} of ${size} bytes after the upload; push again to resume`);
  } else bar.stop();
  return { resumedFrom };
}

export function register(program: Command, ctx: CliContext, deps: { sleep?: Sleep } = {}): void {
  const image = program.command('image').description('boot images: push, list, show, history, promote, rollback');
  const enc = encodeURIComponent;
  const print = (value: unknown, text: () => string[]) => {
    if (ctx.globals().json) ctx.out(JSON.stringify(value, null, 2));
    else for (const l of text()) ctx.out(l);
  };

  image
    .command('push')
    .description('upload a kernel + initrd (resumable) and create an image version')
    .argument('<paths...>', 'DIR (vmlinuz*, initrd*, optional cmdline file) or KERNEL INITRD')
    .requiredOption('--name <name>', 'image name')
    .requiredOption('--version <version>', 'image version')
    .option('--arch <arch>', 'architecture (checked against the kernel)')
    .option('--cmdline <text>', 'kernel command line (default: DIR/cmdline)')
    .option('--notes <text>', 'release notes')
    .option('--channel <channel>', 'publish onto this channel')
    .option('--force', 'publish onto a gated channel (admin)')
    .action(async (paths: string[], v: { name: string; version: string; arch?: string; cmdline?: string; notes?: string; channel?: string; force?: boolean }) => {
      const call = ctx.http();
      const files = await findImageFiles(paths);
      const cmdline = v.cmdline ?? files.cmdline ?? '';
      // the server checks again; checking here first refuses a bad image before gigabytes are uploaded
      try {
        checkCmdline(cmdline);
        await checkKernel(ByteReader.of(createReadStream(files.kernel)), v.arch);
        await checkInitrd(ByteReader.of(createReadStream(files.initrd)));
      } catch (e) {
        if (e instanceof ImagePartError) throw new ImageCliError(`refused before upload: ${e.message}`);
        throw e;
      }
      const parts = [] as { part: 'kernel' | 'initrd'; digest: string; size: number }[];
      for (const part of ['kernel', 'initrd'] as const) {
        const { digest, size } = await sha256File(files[part]);
        if (size === 0) throw new ImageCliError(`${files[part]} is empty`);
        const { resumedFrom } = await uploadBlob(call, { progress: ctx.progress, sleep: deps.sleep }, part, files[part], digest, size);
        if (resumedFrom > 0 && resumedFrom < size) ctx.out(`${part}: resumed an interrupted upload at ${resumedFrom} of ${size} bytes`);
        parts.push({ part, digest, size });
      }
      const r = await call<{ created: boolean; image: { version: string; manifestDigest: string }; published: { channel: string } | null }>('POST', '/api/v1/images', {
        name: v.name,
        version: v.version,
        ...(v.arch ? { arch: v.arch } : {}),
        kernel: { digest: parts[0]!.digest, size: parts[0]!.size },
        initrd: { digest: parts[1]!.digest, size: parts[1]!.size },
        cmdline,
        ...(v.notes ? { notes: v.notes } : {}),
        ...(v.channel ? { channel: v.channel } : {}),
        ...(v.force ? { force: true } : {}),
      });
      print(r, () => [`${v.name} ${r.image.version} ${r.created ? 'pushed' : 'already present'} (manifest ${r.image.manifestDigest.slice(0, 12)})${r.published ? `, now on ${r.published.channel}` : ''}`]);
    });

  image
    .command('list')
    .description('images with their versions and what each channel points at')
    .action(async () => {
      const r = await ctx.http()<{ images: { name: string; versions: number; latest: string; channels: Record<string, string> }[]; channels: string[] }>('GET', '/api/v1/images');
      print(r, () => [
        ['NAME'.padEnd(20), 'VERSIONS'.padEnd(9), 'LATEST'.padEnd(14), ...r.channels.map((c) => c.toUpperCase().padEnd(12))].join(' '),
        ...r.images.map((i) => [i.name.padEnd(20), String(i.versions).padEnd(9), i.latest.padEnd(14), ...r.channels.map((c) => (i.channels[c] ?? '-').padEnd(12))].join(' ')),
      ]);
    });

  image
    .command('show')
    .description("an image's channels and versions")
    .argument('<name>', 'image name')
    .action(async (name: string) => {
      const r = await ctx.http()<{ channels: Record<string, { version: string; updatedBy: string; updatedAt: string }>; versions: { version: string; arch: string; size: number; createdAt: string; kernel: { digest: string }; initrd: { digest: string } }[] }>(
        'GET',
        `/api/v1/images/${enc(name)}`,
      );
      print(r, () => [
        `image ${name}`,
        ...Object.entries(r.channels).map(([c, x]) => `  ${c.padEnd(10)} → ${x.version} (by ${x.updatedBy}, ${x.updatedAt})`),
        'versions:',
        ...r.versions.map((x) => `  ${x.version.padEnd(14)} ${x.arch.padEnd(8)} ${(x.size / 1048576).toFixed(1).padStart(8)} MiB  kernel ${x.kernel.digest.slice(0, 12)}  initrd ${x.initrd.digest.slice(0, 12)}  ${x.createdAt}`),
      ]);
    });

  image
    .command('history')
    .description("an image's channel history")
    .argument('<name>', 'image name')
    .option('--channel <channel>', 'only this channel')
    .action(async (name: string, v: { channel?: string }) => {
      const r = await ctx.http()<{ history: { at: string; channel: string; action: string; from: { version: string } | null; to: { version: string }; actor: string; reason: string | null }[] }>(
        'GET',
        `/api/v1/images/${enc(name)}/history${v.channel ? `?channel=${enc(v.channel)}` : ''}`,
      );
      print(r, () => r.history.map((h) => `${h.at}  ${h.channel.padEnd(8)} ${h.action.padEnd(13)} ${(h.from?.version ?? '-').padEnd(10)} → ${h.to.version.padEnd(10)} ${h.actor}${h.reason ? `: ${h.reason}` : ''}`));
    });

  image
    .command('promote')
    .description("move a channel to another channel's version (gated: dev → canary → prod)")
    .argument('<name>', 'image name')
    .requiredOption('--from <channel>', 'source channel')
    .requiredOption('--to <channel>', 'target channel')
    .option('--reason <text>', 'why (kept in the history)')
    .option('--force', 'skip the promotion gates (admin)')
    .action(async (name: string, v: { from: string; to: string; reason?: string; force?: boolean }) => {
      const r = await ctx.http()<{ to: { version: string } }>('POST', `/api/v1/images/${enc(name)}/promote`, { from: v.from, to: v.to, ...(v.reason ? { reason: v.reason } : {}), ...(v.force ? { force: true } : {}) });
      print(r, () => [`${name}: ${v.to} now on ${r.to.version} (from ${v.from})`]);
    });

  image
    .command('rollback')
    .description('put a channel back on its previous version')
    .argument('<name>', 'image name')
    .requiredOption('--channel <channel>', 'channel to roll back')
    .option('--reason <text>', 'why (kept in the history)')
    .action(async (name: string, v: { channel: string; reason?: string }) => {
      const r = await ctx.http()<{ from: { version: string } | null; to: { version: string } }>('POST', `/api/v1/images/${enc(name)}/rollback`, { channel: v.channel, ...(v.reason ? { reason: v.reason } : {}) });
      print(r, () => [`${name}: ${v.channel} rolled back from ${r.from?.version ?? '-'} to ${r.to.version}`]);
    });
}

/** `bootfarm image ARGV…` on its own (tests, the e2e helper run inside a namespace). */
export function runImageCommand(argv: string[], opts: ImageCliOptions): Promise<number> {
  return runArea((p, c) => register(p, c, { sleep: opts.sleep }), ['image', ...argv], {
    out: opts.out,
    progress: opts.progress ?? { write: () => true },
    fetchImpl: opts.fetchImpl,
    globals: { url: opts.url, token: opts.token, ca: opts.ca },
  });
}
