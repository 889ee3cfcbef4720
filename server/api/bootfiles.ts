// GET/HEAD /<name>.efi: iPXE EFI binaries over HTTP, for UEFI HTTP boot (issue 19 item 2). Such firmware cannot
// use TFTP: the DHCP offer carries a URL (boot/dhcp/bootfile.ts: `${httpBase}/${bootfiles.uefiHttp}`, ipxe.efi
// by default) and the firmware fetches it from this listener. The bytes come from the same opener as the TFTP
// server's (boot/tftp/fs-open.ts: configured files, then the TFTP root, then Debian's iPXE), so an operator's
// own ipxe.efi is served the same way over both protocols. Only single-segment `.efi` names are routed here,
// and the opener confines the name to what it knows: anything else is a 404.
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { OpenFn, OpenedFile } from '../../boot/tftp/index.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The paths this module answers (also used by the boot listener's allowlist and the public-path check). */
export const BOOT_BINARY_PATH = /^\/[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.efi$/;

/** `missing(name)`: what a 404 says for a name whose absence has a known cause (server/secure-boot.ts) */
export function bootFileRoutes({ open, log, missing = () => null }: { open: OpenFn; log: Logger; missing?: (name: string) => string | null }) {
  const app = new Hono();
  // hono answers HEAD with the GET handler (and drops the body); c.req.method still says HEAD
  app.get('/:name{[A-Za-z0-9][A-Za-z0-9._-]{0,63}\\.efi}', async function bootBinary(c) {
    const name = c.req.param('name');
    const file = await open(name);
    if (!file) throw new AppError(404, 'not_found', missing(name) ?? `no boot file named ${name}`);
    // UEFI HTTP boot takes the image type from Content-Type before the URL's extension (UEFI 2.x §24.7.2)
    const headers = { 'content-type': 'application/efi', 'content-length': String(file.size), 'cache-control': 'no-cache' };
    const stream = file.stream ?? Readable.from(readAll(file));
    if (c.req.method === 'HEAD') {
      stream.destroy(); // OVMF asks HEAD first for the size, then GET
      return new Response(null, { headers });
    }
    log.info({ file: name, bytes: file.size }, 'boot file served over HTTP');
    return new Response(Readable.toWeb(stream) as ReadableStream, { headers });
  });
  return app;
}

/** a random-access source (e.g. the image store) as a sequence of chunks */
async function* readAll(file: OpenedFile): AsyncGenerator<Buffer> {
  if (!file.read) return;
  for (let off = 0; off < file.size; off += 128 * 1024) yield await file.read(off, Math.min(128 * 1024, file.size - off));
}
