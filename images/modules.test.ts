import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { moduleName, parseModulesBuiltin, parseModulesDep, selectModules } from './modules.ts';

// Real depmod output over Debian's linux-image-6.1.0-56-amd64 (see the header of the fixture).
const index = parseModulesDep(fs.readFileSync(new URL('./fixtures/modules.dep.txt', import.meta.url), 'utf8'));

describe('moduleName', () => {
  it.each([
    ['kernel/drivers/net/virtio_net.ko', 'virtio_net'],
    ['kernel/lib/crc-t10dif.ko', 'crc_t10dif'],
    ['kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz', 'i2c_algo_bit'],
    ['crc64-rocksoft', 'crc64_rocksoft'],
  ])('%s is %s', (path, name) => expect(moduleName(path)).toBe(name));
});

describe('selectModules over the real modules.dep', () => {
  it('loads the FACTS.md virtio chain with every dependency before its user', () => {
    const { order } = selectModules(index, { required: ['virtio_pci', 'virtio_net'] });
    expect(new Set(order)).toEqual(
      new Set(['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']),
    );
    const at = (m: string): number => order.indexOf(m);
    for (const [m, deps] of index.deps) if (order.includes(m)) for (const d of deps) expect(at(d), `${d} before ${m}`).toBeLessThan(at(m));
  });

  it('resolves ext4 to crc16, mbcache and jbd2 first and names each module once', () => {
    const { order } = selectModules(index, { required: ['ext4', 'jbd2', 'sd_mod', 'scsi_mod'] });
    expect(order.slice(0, 4)).toEqual(['crc16', 'mbcache', 'jbd2', 'ext4']);
    expect(order).toContain('crc_t10dif');
    expect(new Set(order).size).toBe(order.length);
  });

  it('gives the same order for the same request (reproducible /etc/bootfarm/modules.load)', () => {
    const req = { required: ['ipmi_si', 'ipmi_devintf', 'igb'] };
    expect(selectModules(index, req).order).toEqual(selectModules(index, req).order);
    expect(selectModules(index, req).order).toEqual(['ipmi_msghandler', 'ipmi_si', 'ipmi_devintf', 'dca', 'i2c_algo_bit', 'igb']);
  });

  it('lists optional modules the package lacks instead of failing, and built-ins apart', () => {
    const sel = selectModules(index, { required: ['virtio'], optional: ['ice', 'crc32c'] }, parseModulesBuiltin('kernel/crypto/crc32c.ko\n'));
    expect(sel.missing).toEqual(['ice']);
    expect(sel.builtin).toEqual(['crc32c']);
  });

  it('fails with the module name when a required module is absent', () => {
    expect(() => selectModules(index, { required: ['mlx5_core'] })).toThrow(/required module mlx5_core/);
  });

  it('rejects a malformed modules.dep line with its line number', () => {
    expect(() => parseModulesDep('kernel/a.ko:\nnot a dep line\n')).toThrow(/line 2/);
  });

  it('reports a dependency cycle instead of recursing forever', () => {
    const cyclic = parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n');
    expect(() => selectModules(cyclic, { required: ['a'] })).toThrow(/cycle: a → b → a/);
  });
});
