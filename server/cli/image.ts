// `bootfarm image …` commands. Like the rest of the CLI they talk to a running server's admin API; uploads
// use the resumable protocol of admin.ts, so an interrupted push continues where it stopped.
//   image push DIR|KERNEL INITRD --name N --version V [--arch A] [--cmdline S] [--notes S] [--channel C [--force]]
//   image list | show NAME | history NAME [--channel C]
//   image promote NAME --from canary --to prod [--reason S] [--force]
//   image rollback NAME --channel prod [--reason S]
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHttp } from './http.ts';
import { sha256File } from '../images/pipeline.ts';
import { retry, type Sleep } from '../contract/backoff.ts';
import { ByteReader, checkCmdline, checkInitrd, checkKernel, ImagePartError } from '../images/parts.ts';
import { createReadStream } from 'node:fs';

export const IMAGE_USAGE = `  image push DIR|KERNEL INITRD --name N --version V [--arch A] [--cmdline S] [--notes S] [--channel C [--force]]
  image list | image show NAME | image history NAME [--channel C]
  image promote NAME --from CHANNEL --to CHANNEL [--reason S] [--force]
  image rollback NAME --channel CHANNEL [--reason S]`;

export class ImageCliError extends Error {}

export interface ImageCliOptions {
  url: string;
  token?: string;
  /** stdout lines */
  out: (line: string) => void;
  /** progress (stderr); `\\r`-updated on a TTY */
  progress?: { write(s: string): unknown; isTTY?: boolean };
  fetchImpl?: typeof fetch;
  /** waits between retries of an upload chunk (tests pass a recorder) */
  sleep?: Sleep;
}

/** A chunk that failed on the way (no answer, or a 5xx while the server restarts) is sent again, with the project's
 * backoff; a 4xx is the caller's mistake and ends the push. */
const CHUNK_RETRY = { baseMs: 500, capMs: 10_000, jitter: 'full', attempts: 6 } as const;
const transient = (e: unknown) => {
  const status = (e as { status?: number }).status;
  return status === undefined || status >= 500;
};

function client({ url, token, fetchImpl = fetch }: ImageCliOptions) {
  // status and body ride on the error: an interrupted upload resumes from the offset the server reports
  return createHttp({ url, token, fetchImpl, fail: (m, status, body) => Object.assign(new ImageCliError(m), { status, body }) });
}

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

function bar(label: string, done: number, total: number, tty: boolean): string {
  const pct = total ? done / total : 1;
  const width = 30;
  const fill = Math.round(pct * width);
  const mib = (n: number) => (n / 1048576).toFixed(1);
  return `${tty ? '\r' : ''}${label.padEnd(7)} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(Math.floor(pct * 100)).padStart(3)}% ${mib(done)}/${mib(total)} MiB${tty ? '' : '\n'}`;
}

/** Upload one file by digest, resuming from what the server already has. */
export async function uploadBlob(opts: ImageCliOptions, label: string, path: string, digest: string, size: number): Promise<{ resumedFrom: number }> {
  const call = client(opts);
  const tty = !!opts.progress?.isTTY;
  const status = await call<{ offset: number; complete: boolean; chunkBytes: number }>('GET', `/api/v1/images/blobs/${digest}/upload`);
  let offset = status.offset;
  const resumedFrom = status.complete ? size : offset;
  let lastPct = -1;
  const show = () => {
    const pct = Math.floor((offset / size) * 10);
    if (tty || pct !== lastPct) opts.progress?.write(bar(label, offset, size, tty));
    lastPct = pct;
  };
  show();
  if (!status.complete) {
    const fh = await open(path, 'r');
    try {
      while (offset < size) {
        const len = Math.min(status.chunkBytes, size - offset);
        const buf = Buffer.allocUnsafe(len);
        await fh.read(buf, 0, len, offset);
        try {
          const at = offset;
          const r = await retry(() => call<{ offset: number }>('PATCH', `/api/v1/images/blobs/${digest}/upload`, buf, { 'upload-offset': String(at), 'upload-length': String(size) }), {
            ...CHUNK_RETRY,
            retryable: transient,
            sleep: opts.sleep ?? ((ms) => new Promise((res) => setTimeout(res, ms))),
            onRetry: (err, n, ms) => opts.progress?.write(`${tty ? '\n' : ''}${label}: ${(err as Error).message}; retry ${n + 1} in ${ms} ms\n`),
          });
          offset = r.offset;
        } catch (e) {
          // The server holds a different amount (an earlier run died mid-chunk): continue from its offset.
          const body = (e as { body?: { error?: { code?: string; details?: { offset?: number } } } }).body;
          if (body?.error?.code === 'offset_mismatch' && typeof body.error.details?.offset === 'number') offset = body.error.details.offset;
          else throw e;
        }
        show();
      }
    } finally {
      await fh.close();
    }
  } else offset = size;
  if (tty) opts.progress?.write(bar(label, size, size, tty) + '\n');
  return { resumedFrom };
}

export async function runImageCommand(argv: string[], opts: ImageCliOptions): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      version: { type: 'string' },
      arch: { type: 'string' },
      cmdline: { type: 'string' },
      notes: { type: 'string' },
      channel: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [sub, ...rest] = positionals;
  const call = client(opts);
  const print = (value: unknown, text: () => string[]) => {
    if (v.json) opts.out(JSON.stringify(value, null, 2));
    else for (const l of text()) opts.out(l);
  };
  const need = (x: string | undefined, what: string) => {
    if (!x) throw new ImageCliError(`missing ${what}\n${IMAGE_USAGE}`);
    return x;
  };
  const enc = encodeURIComponent;
  switch (sub) {
    case 'push': {
      const name = need(v.name, '--name');
      const version = need(v.version, '--version');
      const files = await findImageFiles(rest);
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
        const { resumedFrom } = await uploadBlob(opts, part, files[part], digest, size);
        if (resumedFrom > 0 && resumedFrom < size) opts.out(`${part}: resumed an interrupted upload at ${resumedFrom} of ${size} bytes`);
        parts.push({ part, digest, size });
      }
      const r = await call<{ created: boolean; image: { version: string; manifestDigest: string }; published: { channel: string } | null }>('POST', '/api/v1/images', {
        name,
        version,
        ...(v.arch ? { arch: v.arch } : {}),
        kernel: { digest: parts[0]!.digest, size: parts[0]!.size },
        initrd: { digest: parts[1]!.digest, size: parts[1]!.size },
        cmdline,
        ...(v.notes ? { notes: v.notes } : {}),
        ...(v.channel ? { channel: v.channel } : {}),
        ...(v.force ? { force: true } : {}),
      });
      print(r, () => [`${name} ${r.image.version} ${r.created ? 'pushed' : 'already present'} (manifest ${r.image.manifestDigest.slice(0, 12)})${r.published ? `, now on ${r.published.channel}` : ''}`]);
      return 0;
    }
    case 'list': {
      const r = await call<{ images: { name: string; versions: number; latest: string; channels: Record<string, string> }[]; channels: string[] }>('GET', '/api/v1/images');
      print(r, () => [
        ['NAME'.padEnd(20), 'VERSIONS'.padEnd(9), 'LATEST'.padEnd(14), ...r.channels.map((c) => c.toUpperCase().padEnd(12))].join(' '),
        ...r.images.map((i) => [i.name.padEnd(20), String(i.versions).padEnd(9), i.latest.padEnd(14), ...r.channels.map((c) => (i.channels[c] ?? '-').padEnd(12))].join(' ')),
      ]);
      return 0;
    }
    case 'show': {
      const name = need(rest[0], 'NAME');
      const r = await call<{ channels: Record<string, { version: string; updatedBy: string; updatedAt: string }>; versions: { version: string; arch: string; size: number; createdAt: string; kernel: { digest: string }; initrd: { digest: string } }[] }>('GET', `/api/v1/images/${enc(name)}`);
      print(r, () => [
        `image ${name}`,
        ...Object.entries(r.channels).map(([c, x]) => `  ${c.padEnd(10)} → ${x.version} (by ${x.updatedBy}, ${x.updatedAt})`),
        'versions:',
        ...r.versions.map((x) => `  ${x.version.padEnd(14)} ${x.arch.padEnd(8)} ${(x.size / 1048576).toFixed(1).padStart(8)} MiB  kernel ${x.kernel.digest.slice(0, 12)}  initrd ${x.initrd.digest.slice(0, 12)}  ${x.createdAt}`),
      ]);
      return 0;
    }
    case 'history': {
      const name = need(rest[0], 'NAME');
      const r = await call<{ history: { at: string; channel: string; action: string; from: { version: string } | null; to: { version: string }; actor: string; reason: string | null }[] }>(
        'GET',
        `/api/v1/images/${enc(name)}/history${v.channel ? `?channel=${enc(v.channel)}` : ''}`,
      );
      print(r, () => r.history.map((h) => `${h.at}  ${h.channel.padEnd(8)} ${h.action.padEnd(13)} ${(h.from?.version ?? '-').padEnd(10)} → ${h.to.version.padEnd(10)} ${h.actor}${h.reason ? `: ${h.reason}` : ''}`));
      return 0;
    }
    case 'promote': {
      const name = need(rest[0], 'NAME');
      const r = await call<{ to: { version: string } }>('POST', `/api/v1/images/${enc(name)}/promote`, { from: need(v.from, '--from'), to: need(v.to, '--to'), ...(v.reason ? { reason: v.reason } : {}), ...(v.force ? { force: true } : {}) });
      print(r, () => [`${name}: ${v.to} now on ${r.to.version} (from ${v.from})`]);
      return 0;
    }
    case 'rollback': {
      const name = need(rest[0], 'NAME');
      const r = await call<{ from: { version: string } | null; to: { version: string } }>('POST', `/api/v1/images/${enc(name)}/rollback`, { channel: need(v.channel, '--channel'), ...(v.reason ? { reason: v.reason } : {}) });
      print(r, () => [`${name}: ${v.channel} rolled back from ${r.from?.version ?? '-'} to ${r.to.version}`]);
      return 0;
    }
    default:
      throw new ImageCliError(`unknown image command ${JSON.stringify(sub ?? '')}\n${IMAGE_USAGE}`);
  }
}
