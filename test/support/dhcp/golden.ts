// Whole-reply golden files (STYLE.md §9): the encoded reply as hex, preceded by '#' lines that say where
// it goes and what it holds, so a reviewer can read a diff. UPDATE_GOLDEN=1 rewrites them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodePacket, encodePacket } from '../../../boot/dhcp/packet.ts';
import type { Reply } from '../../../boot/dhcp/responder.ts';

const dir = new URL('../../../boot/dhcp/fixtures/golden/', import.meta.url);

export function renderReply(reply: Reply | null): string {
  if (!reply) return '# no reply\n';
  const bytes = encodePacket(reply.packet, reply.maxSize);
  const d = decodePacket(bytes);
  if (!d.ok) throw new Error(`reply does not decode: ${d.error}`);
  const p = d.packet;
  const lines = [
    `# to ${reply.to.address}:${reply.to.port}${reply.broadcast ? ' (broadcast)' : ''}`,
    `# op=${p.op} xid=${p.xid.toString(16)} flags=${p.flags.toString(16)} ciaddr=${p.ciaddr} yiaddr=${p.yiaddr} siaddr=${p.siaddr} giaddr=${p.giaddr}`,
    `# file=${JSON.stringify(p.file)}`,
    ...[...p.options].map(([k, v]) => `# option ${k} = ${v.toString('hex')}${/^[\x20-\x7e]+$/.test(v.toString('latin1')) && v.length > 2 ? ` (${JSON.stringify(v.toString('latin1'))})` : ''}`),
    bytes.toString('hex'),
  ];
  return `${lines.join('\n')}\n`;
}

/** Returns [actual, expected]; UPDATE_GOLDEN=1 writes the file first. A missing file compares as empty. */
export function golden(name: string, reply: Reply | null): [string, string] {
  const actual = renderReply(reply);
  const path = fileURLToPath(new URL(`${name}.txt`, dir));
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(fileURLToPath(dir), { recursive: true });
    writeFileSync(path, actual);
  }
  return [actual, existsSync(path) ? readFileSync(path, 'utf8') : ''];
}
