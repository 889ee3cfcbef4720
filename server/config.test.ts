import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, rawConfig } from './config.ts';

describe('config', () => {
  it('has embedded defaults that need nothing installed', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ dataDir: 'var', http: { port: 8080, keepAliveSeconds: 65 }, boot: { stage1: { image: 'stage1', channel: 'prod' } } });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.profiles.default).toMatchObject({ image: 'hypervisor', channel: 'prod', heartbeatIntervalSeconds: 30 });
  });

  it('reads nested settings and tokens from the environment', () => {
    const raw = rawConfig({ BOOTFARM_HTTP__PORT: '9090', BOOTFARM_HTTP__PUBLIC_URL: 'http://10.1.0.1:9090', BOOTFARM_TOKENS: 'admin:aaaaaaaaaaaaaaaaaaaa,viewer:bbbbbbbbbbbbbbbbbbbb', DATABASE_URL: 'postgres://u@h/db' });
    const c = parseConfig(raw);
    expect(c.http.port).toBe(9090);
    expect(c.http.publicUrl).toBe('http://10.1.0.1:9090');
    expect(c.databaseUrl).toBe('postgres://u@h/db');
    expect(c.auth.tokens.map((t) => t.role)).toEqual(['admin', 'viewer']);
  });

  it('the admin listener: off by default; from the environment with its TLS files; tls is required', () => {
    expect(parseConfig({}).admin).toBeUndefined();
    const c = parseConfig(rawConfig({ BOOTFARM_ADMIN__TLS__CERT: '/etc/bootfarm/admin.crt', BOOTFARM_ADMIN__TLS__KEY: '/etc/bootfarm/admin.key' }));
    expect(c.admin).toEqual({ listen: { host: '0.0.0.0', port: 8443 }, tls: { cert: '/etc/bootfarm/admin.crt', key: '/etc/bootfarm/admin.key' } });
    expect(() => parseConfig({ admin: { listen: { port: 9443 } } })).toThrow(/admin\.tls: /);
  });

  it('names every invalid setting', () => {
    try {
      parseConfig(rawConfig({ BOOTFARM_HTTP__PORT: '70000', BOOTFARM_LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x', BOOTFARM_TOKENS: 'root:short' }));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const p = (e as ConfigError).problems.join('\n');
      expect(p).toMatch(/^http\.port:/m);
      expect(p).toMatch(/^log\.level:/m);
      expect(p).toMatch(/^databaseUrl: must be a postgres:\/\/ URL/m);
      expect(p).toMatch(/^auth\.tokens\.0\.role:/m);
      expect(p).toMatch(/^auth\.tokens\.0\.token: tokens must be at least 16 characters/m);
    }
  });

  it('rejects unknown settings in strict sections and a broken file', () => {
    expect(() => parseConfig({ http: { prot: 1 } })).toThrow(/http: Unrecognized key/);
    expect(() => rawConfig({}, { path: 'c.yaml', text: 'http: [1,' })).toThrow(ConfigError);
    expect(() => rawConfig({}, { path: 'c.yaml', text: '42' })).toThrow(/top level must be a mapping/);
  });
});

describe('the example configuration (docs/bootfarm.example.yaml)', () => {
  it('parses whole, every module section included', async () => {
    const { loadConfig, parseSection } = await import('./config.ts');
    const { DhcpConfigSchema } = await import('../boot/dhcp/index.ts');
    const { tftpConfigSchema } = await import('../boot/tftp/index.ts');
    const { ImagesConfig } = await import('./images/index.ts');
    const { FleetConfig } = await import('./fleet/index.ts');
    const c = loadConfig({ BOOTFARM_CONFIG: new URL('../docs/bootfarm.example.yaml', import.meta.url).pathname });
    expect(c.profiles.canary!.match).toEqual({ ring: 'canary' });
    expect(parseSection('dhcp', DhcpConfigSchema, c.dhcp)).toMatchObject({ mode: 'full', interface: 'eth1' });
    const { Dhcp6ConfigSchema } = await import('../boot/dhcp6/index.ts');
    expect(parseSection('dhcp6', Dhcp6ConfigSchema, c.dhcp6)).toMatchObject({ enabled: false, interface: 'eth1', serverAddress: 'fd5b:0:0:20::1' });
    expect(parseSection('tftp', tftpConfigSchema, c.tftp)).toMatchObject({ port: 69 });
    expect(parseSection('images', ImagesConfig, c.images).store.kind).toBe('s3');
    expect(parseSection('fleet', FleetConfig, c.fleet).webhooks.urls).toHaveLength(1);
  });

  it('names the module setting that is wrong', async () => {
    const { parseSection } = await import('./config.ts');
    const { DhcpConfigSchema } = await import('../boot/dhcp/index.ts');
    expect(() => parseSection('dhcp', DhcpConfigSchema, { mode: 'full', interface: 'eth1', serverIp: '10.0.0.300', httpBase: 'http://x' })).toThrow(/dhcp\.serverIp: must be a dotted IPv4 address/);
  });

  it('dhcp6: off unless enabled; a bad address or a range outside its prefix is named', async () => {
    const { parseSection } = await import('./config.ts');
    const { Dhcp6ConfigSchema } = await import('../boot/dhcp6/index.ts');
    const ok = { interface: 'eth1', serverAddress: 'fd5b::1', httpBase: 'http://[fd5b::1]:8080' };
    expect(parseSection('dhcp6', Dhcp6ConfigSchema, ok)).toMatchObject({ enabled: false, port: 547, rapidCommit: true, unknownClients: 'serve' });
    expect(() => parseSection('dhcp6', Dhcp6ConfigSchema, { ...ok, serverAddress: 'fd5b::g' })).toThrow(/dhcp6\.serverAddress: must be an IPv6 address/);
    expect(() => parseSection('dhcp6', Dhcp6ConfigSchema, { ...ok, pools: [{ prefix: 'fd5b::/64', range: { start: 'fd5c::1', end: 'fd5c::9' } }] })).toThrow(/dhcp6\.pools\.0: range fd5c::1-fd5c::9 is not inside fd5b::\/64/);
    expect(() => parseSection('dhcp6', Dhcp6ConfigSchema, { ...ok, preferredSeconds: 9000, validSeconds: 3600 })).toThrow(/dhcp6\.preferredSeconds: preferredSeconds 9000 is over validSeconds 3600/);
  });
});
