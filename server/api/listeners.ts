// Which paths the boot listener serves when the admin API and dashboard have their own TLS listener (config
// `admin`, server/admin-listener.ts). iPXE has no usable HTTPS, so nodes keep plain HTTP; everything an operator
// uses moves off it. An allowlist, not a denylist: a path added later is admin-only until it is listed here.
// The request URL is already normalised by the WHATWG URL parser (`/api/v1/agent/../nodes` is `/api/v1/nodes`),
// the same path the router matches.

const BOOT_EXACT = new Set(['/boot.ipxe', '/healthz', '/readyz', '/metrics']);
const BOOT_PREFIXES = ['/ipxe/', '/grub/', '/api/v1/agent/', '/images/'];
/** UEFI HTTP boot's iPXE binary (server/api/bootfiles.ts), e.g. /ipxe.efi */
const BOOT_BINARY = /^\/[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.efi$/;

export function isBootListenerPath(path: string): boolean {
  return BOOT_EXACT.has(path) || BOOT_PREFIXES.some((p) => path.startsWith(p)) || BOOT_BINARY.test(path);
}

type Fetch<E> = (req: Request, env: E) => Response | Promise<Response>;

/** The app's fetch, limited to the boot paths: anything else is a 404 in the API's error shape that says where
 * it is served instead. */
export function bootListenerFetch<E>(fetch: Fetch<E>): Fetch<E> {
  return function bootOnly(req, env) {
    const path = new URL(req.url).pathname;
    if (isBootListenerPath(path)) return fetch(req, env);
    const message = `${req.method} ${path} is not served on the boot listener: the admin API and dashboard are on the admin listener (HTTPS, config admin.listen)`;
    return Response.json({ error: { code: 'not_found', message } }, { status: 404 });
  };
}
