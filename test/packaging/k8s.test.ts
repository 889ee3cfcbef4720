// The Kubernetes manifests (packaging/k8s/, issue 17 item 2), checked offline against the Kubernetes OpenAPI
// schemas that kubernetes-models ships compiled (types, required fields, enums, formats). Those schemas accept
// unknown fields, as the API server's non-strict decoding does; the fields this deployment depends on
// (hostNetwork, capabilities, probes, references between objects) are asserted by name below. The ConfigMap's
// configuration and the Secret's environment go through the server's own configuration schemas.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { DhcpConfigSchema } from '../../boot/dhcp/index.ts';
import { tftpConfigSchema } from '../../boot/tftp/index.ts';
import { parseConfig, parseSection, rawConfig } from '../../server/config.ts';
import { ImagesConfig } from '../../server/images/index.ts';
import { ROOT } from '../harness/release.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
};

const dir = join(ROOT, 'packaging/k8s');
const objects: Obj[] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as Obj;
    }),
  );
const find = (kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in packaging/k8s`);
  return o;
};

/** The configuration the pod gets: the file from the ConfigMap, overlaid by the Secret's environment — validated
 *  as the server does at start-up (the top level, then each module's section with its own schema). */
function loadConfigFrom(yamlText: string, env: Record<string, string>) {
  const raw = rawConfig(env, { path: '/etc/bootfarm/bootfarm.yaml', text: yamlText });
  const config = parseConfig(raw);
  return {
    ...config,
    dhcp: parseSection('dhcp', DhcpConfigSchema, raw.dhcp),
    tftp: parseSection('tftp', tftpConfigSchema, raw.tftp),
    images: parseSection('images', ImagesConfig, raw.images),
  };
}

function validate(o: Obj): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind} (${o.metadata?.name}): add it to MODELS`);
  new Model(o).validate();
}

describe('packaging/k8s', () => {
  it('every object validates against the Kubernetes schema of its kind', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      ['ConfigMap/bootfarm-config', 'Deployment/bootfarm', 'Namespace/bootfarm', 'Secret/bootfarm-secrets', 'Service/bootfarm', 'Service/postgres', 'Service/rgw', 'ServiceAccount/bootfarm'].sort(),
    );
    for (const o of objects) expect(() => validate(o), `${o.kind}/${o.metadata.name}`).not.toThrow();
    for (const o of objects) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('bootfarm');
  });

  it('the validator rejects a wrong type, a missing required field and a bad enum (it can fail)', () => {
    const d = structuredClone(find('Deployment', 'bootfarm'));
    d.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    expect(() => validate(d)).toThrow(/containerPort must be integer/);
    const noSelector = structuredClone(find('Deployment', 'bootfarm'));
    delete noSelector.spec.selector;
    expect(() => validate(noSelector)).toThrow(/selector/);
    const svc = structuredClone(find('Service', 'bootfarm'));
    svc.spec.ports[0].protocol = 'QUIC';
    expect(() => validate(svc)).toThrow(/protocol/);
  });

  it('the server runs on the host network with NET_BIND_SERVICE only, probes /healthz and /readyz, and its references resolve', () => {
    const d = find('Deployment', 'bootfarm');
    const pod = d.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(d.spec.strategy.type).toBe('Recreate');
    const [c] = pod.containers;
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.ports.filter((p: any) => p.protocol === 'UDP').map((p: any) => p.containerPort).sort()).toEqual([4011, 67, 69]);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    // selector ⊆ pod labels, the Service selects the pod, referenced objects exist
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
    for (const [k, v] of Object.entries(find('Service', 'bootfarm').spec.selector)) expect(d.spec.template.metadata.labels[k]).toBe(v);
    find('ServiceAccount', pod.serviceAccountName);
    find('Secret', c.envFrom[0].secretRef.name);
    const cm = find('ConfigMap', pod.volumes.find((v: any) => v.configMap).configMap.name);
    const mount = c.volumeMounts.find((m: any) => m.name === 'config').mountPath;
    const file = c.env.find((e: any) => e.name === 'BOOTFARM_CONFIG').value as string;
    expect(file.startsWith(`${mount}/`)).toBe(true);
    expect(Object.keys(cm.data)).toContain(file.slice(mount.length + 1));
  });

  it('the ConfigMap and Secret make a valid server configuration that reaches PostgreSQL and RGW through the ExternalName services', () => {
    const cm = find('ConfigMap', 'bootfarm-config');
    const secret = find('Secret', 'bootfarm-secrets');
    const cfg = loadConfigFrom(cm.data['bootfarm.yaml'], secret.stringData);
    for (const name of ['postgres', 'rgw']) expect(find('Service', name).spec.type).toBe('ExternalName');
    expect(new URL(cfg.databaseUrl!).hostname).toBe('postgres.bootfarm.svc.cluster.local');
    const store = cfg.images.store;
    if (store.kind !== 's3') throw new Error(`images.store.kind is ${store.kind}, expected s3 (RGW)`);
    expect(new URL(store.endpoint).hostname).toBe('rgw.bootfarm.svc.cluster.local');
    expect(store.secretAccessKey).toBe(secret.stringData.BOOTFARM_IMAGES__STORE__SECRET_ACCESS_KEY);
    expect(Buffer.from(cfg.secrets.kek!, 'base64')).toHaveLength(32);
    expect(cfg.auth.tokens.map((t) => t.role).sort()).toEqual(['admin', 'viewer']);
    expect(cfg.dhcp.interface).toBe('eth1');
  });
});
