// The storm simulator's TFTP clients (tftp.ts) against bootfarm's TFTP server on loopback: the bytes arrive, the
// options are the ones each firmware asks for, and the server sees each transfer end the way a real client ends it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTftpServer, type TftpServer } from '../../../boot/tftp/index.ts';
import { tftpGet } from './tftp.ts';

// snponly.efi's size in Debian's ipxe package: 120 blocks at 1456 or 1468, the last one short
const SIZE = 173_792;
const body = randomBytes(SIZE);
let server: TftpServer;
let port: number;
const requested: string[] = [];

beforeAll(async () => {
  server = createTftpServer({
    address: '127.0.0.1',
    port: 0,
    open: async (path) => {
      requested.push(path);
      return path === 'snponly.efi' ? { size: SIZE, read: async (offset, length) => body.subarray(offset, offset + length) } : null;
    },
  });
  port = (await server.start()).port;
});
afterAll(() => server.stop());

/** the server's counters once the transfers it is still finishing are done (it hears the last ACK after the client returned) */
async function settled() {
  for (let i = 0; i < 100 && server.stats.activeTransfers > 0; i++) await new Promise((r) => setTimeout(r, 10));
  return server.stats;
}

describe('simulated firmware TFTP clients', () => {
  it("a BIOS PXE ROM reads lockstep, and its last ACK reaches the server (the transfer completes, it does not time out)", async () => {
    const before = server.stats;
    const r = await tftpGet({ server: '127.0.0.1', port, file: 'snponly.efi', client: 'pxe-rom' });
    expect(r).toEqual({ bytes: SIZE, tsize: SIZE, blksize: 1456, windowsize: 1, resent: 0, stalls: [] });
    const after = await settled();
    expect(after.activeTransfers).toBe(0);
    expect(after.transfersCompleted - before.transfersCompleted).toBe(1);
    expect(after.transfersFailed - before.transfersFailed).toBe(0);
    expect(after.bytesSent - before.bytesSent).toBe(SIZE);
  });

  it('OVMF probes the size in a transfer it ends with an ERROR, then reads with blksize 1468 and windowsize 4', async () => {
    const before = server.stats;
    requested.length = 0;
    const r = await tftpGet({ server: '127.0.0.1', port, file: 'snponly.efi', client: 'ovmf' });
    expect(r).toEqual({ bytes: SIZE, tsize: SIZE, blksize: 1468, windowsize: 4, resent: 0, stalls: [] });
    expect(requested).toEqual(['snponly.efi', 'snponly.efi']);
    const after = await settled();
    expect(after.transfersStarted - before.transfersStarted).toBe(2);
    expect(after.transfersCompleted - before.transfersCompleted).toBe(1);
    // edk2 ends its size probe with an ERROR after the OACK: the server counts that as the peer's error
    expect(after.failedBy.peer_error - before.failedBy.peer_error).toBe(1);
    expect(after.failedBy.timeout - before.failedBy.timeout).toBe(0);
    expect(after.retransmits - before.retransmits).toBe(0);
  });
});
