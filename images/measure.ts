// Boot time of the stage-1 image to the /init banner, zstd vs gzip initramfs, under QEMU TCG (`make images-measure`).
// Builds both variants (reusing earlier builds of the same inputs) with the agent in AGENT_BIN (the real one by
// default: its size dominates the initramfs), then boots each RUNS times, one VM at a time.
//   npx tsx images/measure.ts [--runs 3] [--agent build/agent/bootfarm-agent] [--memory 512] [--out DIR]
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildImages, type Compression } from './build.ts';
import { SerialVm } from './qemu.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    agent: { type: 'string', default: process.env.AGENT_BIN ?? path.join(ROOT, 'build/agent/bootfarm-agent') },
    'zstd-level': { type: 'string', default: process.env.ZSTD_LEVEL ?? '9' },
    // 512 MiB is too little for the real agent's image with a gzip initramfs (see README.md)
    memory: { type: 'string', default: '512' },
    out: { type: 'string', default: path.join(ROOT, 'build/images-measure') },
  },
});
const runs = Number(values.runs);
const variants = [] as { compression: Compression; out: string; size: number; wall: number[]; uptime: number[]; unpack: number[] }[];
for (const compression of ['zstd', 'gzip'] as Compression[]) {
  const out = path.join(values.out, compression);
  const [m] = await buildImages({
    out,
    cache: path.join(ROOT, 'build/images-cache'),
    agentBin: values.agent,
    images: ['stage1'],
    compression,
    zstdLevel: Number(values['zstd-level']),
    reuse: true,
    log: (l) => console.error(l),
  });
  variants.push({ compression, out, size: m!.initrd.size, wall: [], uptime: [], unpack: [] });
}
// Alternate the variants so the other engineers' load on the shared cores falls on both alike.
for (let i = 0; i < runs; i++) {
  for (const v of variants) {
    const vm = new SerialVm({
      kernel: path.join(v.out, 'stage1/vmlinuz'),
      initrd: path.join(v.out, 'stage1/initrd.img'),
      // No NIC: only the time to the banner is measured.
      append: 'console=ttyS0 bootfarm.server=http://127.0.0.1:9',
      memoryMiB: Number(values.memory),
    });
    try {
      const b = await vm.waitFor(/stage1 \/init started \(.*uptime ([\d.]+)s\)/, 180_000);
      v.wall.push((Date.now() - vm.started) / 1000);
      v.uptime.push(Number(b[1]));
      // The decompression itself, from the kernel's own timestamps (init/initramfs.c; asynchronous since 5.14).
      const t1 = /\[\s*([\d.]+)\] Trying to unpack rootfs image as initramfs/.exec(vm.console);
      const t2 = /\[\s*([\d.]+)\] Freeing initrd memory/.exec(vm.console);
      if (t1 && t2) v.unpack.push(Number(t2[1]) - Number(t1[1]));
    } finally {
      await vm.stop();
    }
  }
}
const avg = (a: number[]): string => (a.reduce((x, y) => x + y, 0) / a.length).toFixed(2);
console.log(`agent ${values.agent}, -m ${values.memory}, ${runs} runs each`);
console.log(`| initramfs | size | QEMU start → /init banner, mean (runs) | guest uptime at banner, mean (runs) | kernel unpack time, mean (runs) |`);
console.log(`|---|---|---|---|---|`);
for (const v of variants) {
  const level = v.compression === 'zstd' ? ` -${values['zstd-level']}` : ' -9';
  console.log(`| ${v.compression}${level} | ${(v.size / 1048576).toFixed(1)} MiB | ${avg(v.wall)} s (${v.wall.map((w) => w.toFixed(1)).join(', ')}) | ${avg(v.uptime)} s (${v.uptime.map((w) => w.toFixed(1)).join(', ')}) | ${avg(v.unpack)} s (${v.unpack.map((w) => w.toFixed(2)).join(', ')}) |`);
}
