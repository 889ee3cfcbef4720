// Pure decisions for one read request: is the path acceptable, and which options do we grant.
// Kept apart from the socket so each rule is a table-tested function (STYLE.md §2).

export interface OptionLimits {
  /** largest blksize we grant (RFC 2348 allows 8..65464; 1468 fills a 1500-byte Ethernet frame) */
  maxBlksize: number;
  /** largest windowsize we grant (RFC 7440 allows 1..65535) */
  maxWindow: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** retransmission timeout the client asked for (RFC 2349), if we accepted it */
  timeoutMs: number | undefined;
  /** what goes in the OACK, in the client's order; empty → no OACK, plain RFC 1350 transfer */
  oack: [string, string][];
}

function intOption(value: string): number | null {
  // Decimal digits only: RFC 2347 option values are ASCII numbers; "0x10", " 8" or "1e3" are not.
  if (!/^[0-9]{1,10}$/.test(value)) return null;
  return Number(value);
}

/**
 * RFC 2347 negotiation. Options we do not know or whose values are out of range are simply left
 * out of the OACK: the RFC says the client must then fall back to the default for that option,
 * which is kinder to odd firmware than refusing the transfer with error 8.
 */
export function negotiateOptions(requested: ReadonlyMap<string, string>, size: number, limits: OptionLimits): Negotiated {
  const result: Negotiated = { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: [] };
  for (const [name, raw] of requested) {
    const n = intOption(raw);
    switch (name) {
      case 'blksize': // RFC 2348: 8..65464 octets; the server may answer with a smaller value.
        if (n === null || n < 8) break;
        result.blksize = Math.min(n, 65464, limits.maxBlksize);
        result.oack.push([name, String(result.blksize)]);
        break;
      case 'tsize': // RFC 2349: on a read request the client sends 0 and we answer the size.
        if (n === null) break;
        result.oack.push([name, String(size)]);
        break;
      case 'timeout': // RFC 2349: 1..255 seconds; the server must echo it unchanged or leave it out.
        if (n === null || n < 1 || n > 255) break;
        result.timeoutMs = n * 1000;
        result.oack.push([name, String(n)]);
        break;
      case 'windowsize': // RFC 7440: 1..65535 blocks; the server may answer with a smaller value.
        if (n === null || n < 1 || n > 65535) break;
        result.windowsize = Math.min(n, limits.maxWindow);
        result.oack.push([name, String(result.windowsize)]);
        break;
      default:
        break; // unknown options are ignored (RFC 2347)
    }
  }
  return result;
}

export type PathDecision = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Normalise a requested filename to a relative path with '/' separators, refusing anything that
 * could leave the served root: NUL bytes, drive-letter paths (`C:x`) and any `..` segment. A leading
 * `/` is the served root itself, as in tftpd-hpa's `-s` (secure) mode: GRUB's tftp sends every name
 * with one (`/grub/grub.cfg`, measured on the rack's Secure Boot node), and refusing it broke GRUB's
 * config lookup; `/x` and `x` are the same file and neither can leave the root. Backslashes count as
 * separators so `..\..\etc\passwd` is caught too. `.` segments and
 * repeated separators are dropped, so `./undionly.kpxe` and `undionly.kpxe` are the same file.
 */
export function normalisePath(raw: string): PathDecision {
  if (raw.length === 0) return { ok: false, reason: 'empty path' };
  if (raw.includes('\0')) return { ok: false, reason: 'NUL byte in path' };
  const unified = raw.replace(/\\/g, '/');
  if (/^[A-Za-z]:/.test(unified)) return { ok: false, reason: 'drive-letter path' };
  const parts: string[] = [];
  for (const seg of unified.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, reason: 'parent-directory segment' };
    parts.push(seg);
  }
  if (parts.length === 0) return { ok: false, reason: 'empty path' };
  return { ok: true, path: parts.join('/') };
}
