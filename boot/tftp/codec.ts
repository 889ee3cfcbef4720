// TFTP packet codec (RFC 1350, options per RFC 2347). Pure: bytes in, typed values out, and back.
// The decoder never throws: anything it cannot read becomes `{ op: 'invalid', reason }`, so a
// malformed datagram can cost at most an error packet, never the server (the fuzz test holds
// this to account).

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** Error codes of RFC 1350 §5, plus 8 from RFC 2347 (option negotiation refused). */
export const ErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTid: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionRefused: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type Packet =
  | {
      op: 'rrq' | 'wrq';
      filename: string;
      mode: string;
      /** option names lower-cased (RFC 2347: case-insensitive); first occurrence wins */
      options: Map<string, string>;
    }
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: Map<string, string> }
  | { op: 'invalid'; reason: string };

/** RFC 2347 caps a request (opcode, filename, mode, options) at 512 bytes; we accept a little more
 * for lenient clients but refuse anything absurd so a peer cannot make us parse megabytes. */
const MAX_REQUEST_BYTES = 1024;

/** Split NUL-terminated strings. Returns null when the last field lacks its NUL. */
function splitStrings(buf: Buffer, start: number): string[] | null {
  const out: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0) return null;
    // latin1: every byte maps to one char, so odd bytes survive to the path check instead of
    // being folded into U+FFFD by a UTF-8 decoder.
    out.push(buf.toString('latin1', pos, nul));
    pos = nul + 1;
  }
  return out;
}

function decodeRequest(buf: Buffer, op: 'rrq' | 'wrq'): Packet {
  if (buf.length > MAX_REQUEST_BYTES) return { op: 'invalid', reason: 'request too long' };
  const fields = splitStrings(buf, 2);
  if (fields === null) return { op: 'invalid', reason: 'request field not NUL-terminated' };
  const [filename, mode, ...rest] = fields;
  if (filename === undefined || mode === undefined) return { op: 'invalid', reason: 'request lacks filename or mode' };
  if (filename.length === 0) return { op: 'invalid', reason: 'empty filename' };
  const options = new Map<string, string>();
  // RFC 2347: options come in name/value pairs. A dangling name (some clients pad with a NUL)
  // is ignored rather than rejecting the whole request.
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const name = rest[i]!.toLowerCase();
    if (name.length === 0) continue;
    if (!options.has(name)) options.set(name, rest[i + 1]!);
  }
  return { op, filename, mode: mode.toLowerCase(), options };
}

export function decodePacket(buf: Buffer): Packet {
  if (buf.length < 2) return { op: 'invalid', reason: 'shorter than an opcode' };
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
      return decodeRequest(buf, 'rrq');
    case Opcode.WRQ:
      return decodeRequest(buf, 'wrq');
    case Opcode.DATA:
      if (buf.length < 4) return { op: 'invalid', reason: 'DATA shorter than 4 bytes' };
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // RFC 1350: ACK is exactly 4 bytes; trailing bytes are tolerated (some stacks pad frames).
      if (buf.length < 4) return { op: 'invalid', reason: 'ACK shorter than 4 bytes' };
      return { op: 'ack', block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) return { op: 'invalid', reason: 'ERROR shorter than 4 bytes' };
      const nul = buf.indexOf(0, 4);
      const end = nul < 0 ? buf.length : nul; // a missing NUL on an error message is harmless
      return { op: 'error', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, Math.min(end, 4 + 512)) };
    }
    case Opcode.OACK: {
      const fields = splitStrings(buf, 2);
      if (fields === null) return { op: 'invalid', reason: 'OACK field not NUL-terminated' };
      const options = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) options.set(fields[i]!.toLowerCase(), fields[i + 1]!);
      return { op: 'oack', options };
    }
    default:
      return { op: 'invalid', reason: `unknown opcode ${opcode}` };
  }
}

export function encodeError(code: ErrorCode, message: string): Buffer {
  const msg = Buffer.from(message.slice(0, 200), 'latin1');
  const buf = Buffer.alloc(5 + msg.length);
  buf.writeUInt16BE(Opcode.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  msg.copy(buf, 4);
  return buf; // trailing byte already 0
}

export function encodeOack(options: ReadonlyMap<string, string> | Iterable<[string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, Opcode.OACK])];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(Opcode.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

/** Write a DATA header in place: the transfer reuses one buffer per window slot, the payload
 * having been read straight into `slot[4..]`, so sending a block allocates nothing. */
export function writeDataHeader(slot: Buffer, block: number): void {
  slot.writeUInt16BE(Opcode.DATA, 0);
  slot.writeUInt16BE(block & 0xffff, 2);
}

export function encodeRequest(op: 'rrq' | 'wrq', filename: string, mode: string, options: Iterable<[string, string]> = []): Buffer {
  const parts: Buffer[] = [Buffer.from([0, op === 'rrq' ? Opcode.RRQ : Opcode.WRQ]), Buffer.from(`${filename}\0${mode}\0`, 'latin1')];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}
