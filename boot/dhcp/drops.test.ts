// Receive-buffer overflows counted from /proc/net/udp (issue 15 item 3): a real socket on loopback with the
// smallest buffer the kernel allows, flooded by another process while this one's event loop is blocked (so
// nothing drains the queue), must show drops; the parser is checked on a captured /proc/net/udp as well.
import { describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readUdpDrops, udpDrops } from './drops.ts';
import { createDhcpServer } from './server.ts';
import { MemoryLeaseStore } from './leases.ts';
import { FixedBackend } from '../../test/support/dhcp/fakes.ts';

// in the layout Linux writes (net/ipv4/udp.c udp4_format_sock): a socket on 127.0.0.1:40067 that dropped 17 datagrams
const PROC = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  148: 0100007F:9C83 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 1234567 2 0000000000000000 17
  235: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7654321 2 0000000000000000 3
  300: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1111111 2 0000000000000000 99
`;

describe('UDP socket drops', () => {
  it('reads the drops column of the sockets bound to the given address and port', () => {
    expect(udpDrops(PROC, [{ address: '127.0.0.1', port: 40067 }])).toBe(17);
    expect(udpDrops(PROC, [{ address: '127.0.0.1', port: 40067 }, { address: '0.0.0.0', port: 67 }])).toBe(20);
    expect(udpDrops(PROC, [{ address: '10.0.0.1', port: 67 }])).toBe(0);
  });

  it('counts the datagrams a full receive buffer dropped on a real socket', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind({ address: '127.0.0.1', port: 0 }, () => r()));
    const { port } = s.address();
    s.setRecvBufferSize(4096); // the kernel rounds up to its minimum: a few datagrams
    let received = 0;
    s.on('message', () => received++);
    const bound = [{ address: '127.0.0.1', port }];
    expect(readUdpDrops(bound)).toBe(0);
    // execFileSync blocks this event loop while the other process sends: nothing reads the socket meanwhile
    const n = 2000;
    execFileSync(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');let i=0;const b=Buffer.alloc(548);const go=()=>{if(i++>=${n})return s.close();s.send(b,${port},'127.0.0.1',go)};go()`]);
    const drops = readUdpDrops(bound);
    await new Promise((r) => setTimeout(r, 50));
    s.close();
    expect(drops).toBeGreaterThan(0);
    expect(drops + received).toBeLessThanOrEqual(n);
    console.log(`sent ${n}, dropped ${drops}, received ${received} with the smallest receive buffer`);
  });

  it('the DHCP server asks for dhcp.recvBufferBytes on every socket and gets what net.core.rmem_max allows', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const asked = 2 * 1024 * 1024;
    const port = 20000 + Math.floor(Math.random() * 20000);
    const srv = createDhcpServer({ mode: 'proxy', interface: 'lo', serverIp: '127.0.0.1', httpBase: 'http://127.0.0.1:8080', port, proxyPort: port + 1, recvBufferBytes: asked, backend: new FixedBackend(), leases: new MemoryLeaseStore(), skipInterfaceCheck: true });
    await srv.start();
    try {
      // Linux reports twice what it granted (the other half is its bookkeeping)
      expect(srv.recvBufferBytes()).toEqual([0, 1, 2].map(() => 2 * Math.min(asked, rmemMax)));
      expect(srv.socketDrops()).toBe(0);
    } finally {
      await srv.stop();
    }
  });
});
