// The `images:` config section: defaults for `make run`, S3 settings, and errors that name the setting.
import { describe, expect, it } from 'vitest';
import { parseSection, ConfigError } from '../config.ts';
import { ImagesConfig } from './index.ts';

describe('images config', () => {
  it('defaults to the embedded local store, dev/canary/prod and sane gates', () => {
    const c = parseSection('images', ImagesConfig, undefined);
    expect(c.store).toEqual({ kind: 'local' });
    expect(c.channels).toEqual(['dev', 'canary', 'prod']);
    expect(c.gates).toEqual({ minActiveNodes: 3, minSuccessRatio: 0.95, windowHours: 24, noQuarantined: true });
    expect(c.redirect.enabled).toBe(false);
    // parsing an already parsed section is stable (main may parse first, createImages parses again)
    expect(parseSection('images', ImagesConfig, c)).toEqual(c);
  });

  it('accepts an S3 (Ceph RGW) store from env-style strings', () => {
    const c = parseSection('images', ImagesConfig, { store: { kind: 's3', endpoint: 'http://10.0.0.5:7480', bucket: 'bootfarm', accessKeyId: 'AK', secretAccessKey: 'SK', partSizeMiB: '16' } });
    expect(c.store).toMatchObject({ kind: 's3', region: 'default', partSizeMiB: 16, prefix: '' });
  });

  it('names the bad setting', () => {
    expect(() => parseSection('images', ImagesConfig, { store: { kind: 's3', endpoint: 'not a url', bucket: 'b' } })).toThrow(ConfigError);
    try {
      parseSection('images', ImagesConfig, { channels: ['Prod'], gates: { minSuccessRatio: 2 } });
    } catch (e) {
      expect((e as ConfigError).problems).toEqual(expect.arrayContaining([expect.stringMatching(/^images\.channels\.0: /), expect.stringMatching(/^images\.gates\.minSuccessRatio: /)]));
      return;
    }
    expect.unreachable();
  });
});
