// The OpenAPI 3.1 document served at /api/v1/openapi.json, built from the same zod schemas that validate the
// requests (zod 4's toJSONSchema), so the document cannot drift from what the server accepts.
import { z } from 'zod';
import { AddressConflict, AddressConflictResponse, AgentEvents, Detail, HeartbeatRequest, HeartbeatResponse, InstalledRequest, Profile, RegisterRequest, RegisterResponse } from '../contract/agent.ts';
import { ErrorBody } from '../contract/common.ts';
import { BmcInputBody, EnrollBody, LabelsPatch, NodeAction } from './admin.ts';

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  auth: 'none' | 'boot-token' | 'viewer' | 'operator' | 'admin';
  request?: z.ZodType;
  response?: z.ZodType;
  produces?: string;
}

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });

export const CORE_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/boot.ipxe', summary: 'First iPXE script: chains to /ipxe/${uuid}', tag: 'boot', auth: 'none', produces: 'text/plain' },
  { method: 'get', path: '/{name}.efi', summary: 'iPXE EFI binary for UEFI HTTP boot (ipxe.efi), from the TFTP server\'s files', tag: 'boot', auth: 'none', produces: 'application/efi' },
  { method: 'get', path: '/ipxe/{uuid}', summary: 'Per-node iPXE script chosen by state; enrols unknown UUIDs as discovered', tag: 'boot', auth: 'none', produces: 'text/plain' },
  { method: 'post', path: '/api/v1/agent/register', summary: 'Stage-1 registration (idempotent upsert by SMBIOS UUID)', tag: 'agent', auth: 'boot-token', request: RegisterRequest, response: RegisterResponse },
  { method: 'get', path: '/api/v1/agent/{uuid}/profile', summary: 'Compute OS image and kernel command line', tag: 'agent', auth: 'boot-token', response: Profile },
  { method: 'get', path: '/api/v1/agent/{uuid}/detail', summary: 'Hostname, interfaces, bond (mode from the profile, members from LLDP), IPAM addresses, VLANs, routes, DNS, iSCSI target', tag: 'agent', auth: 'boot-token', response: Detail },
  { method: 'post', path: '/api/v1/agent/{uuid}/addresses/conflict', summary: 'Another device answers for an address the node was given (DHCPDECLINE, ARP probe, IPv6 DAD): the address is marked conflict and the node gets the next free one', tag: 'agent', auth: 'boot-token', request: AddressConflict, response: AddressConflictResponse },
  { method: 'post', path: '/api/v1/agent/{uuid}/events', summary: 'Phase timeline from the agent', tag: 'agent', auth: 'boot-token', request: AgentEvents },
  { method: 'post', path: '/api/v1/agent/{uuid}/installed', summary: 'Compute OS is up', tag: 'agent', auth: 'boot-token', request: InstalledRequest },
  { method: 'post', path: '/api/v1/agent/{uuid}/heartbeat', summary: 'Compute OS heartbeat', tag: 'agent', auth: 'boot-token', request: HeartbeatRequest, response: HeartbeatResponse },
  { method: 'get', path: '/api/v1/nodes', summary: 'List nodes (filters: state, label=k=v, manufacturer, product, conflict)', tag: 'nodes', auth: 'viewer' },
  { method: 'get', path: '/api/v1/nodes/{uuid}', summary: 'One node with latest facts, interfaces, conflicts and recent events', tag: 'nodes', auth: 'viewer' },
  { method: 'patch', path: '/api/v1/nodes/{uuid}', summary: 'Set or remove labels (null removes)', tag: 'nodes', auth: 'operator', request: LabelsPatch },
  { method: 'get', path: '/api/v1/nodes/{uuid}/events', summary: 'Event timeline', tag: 'nodes', auth: 'viewer' },
  { method: 'post', path: '/api/v1/nodes/{uuid}/actions', summary: 'maintenance-on|off, rebuild, fail, quarantine (operator), retire (admin)', tag: 'nodes', auth: 'operator', request: NodeAction },
  { method: 'post', path: '/api/v1/nodes/enroll', summary: 'Bulk enrollment from a CSV or YAML inventory (uuid, serial, macs, BMC, labels, profile): every row checked first, 422 lists each problem with its row; all or nothing, one transaction; dryRun writes nothing', tag: 'nodes', auth: 'admin', request: EnrollBody },
  { method: 'delete', path: '/api/v1/nodes/{uuid}', summary: 'Delete a node with its interfaces, leases, boot attempts, credential, facts, events and BMC (audit row in audit_log); 409 node_in_use for active, provisioning, rebuilding, inspecting, firmware-updating or maintenance nodes unless ?force=true', tag: 'nodes', auth: 'admin' },
  { method: 'post', path: '/api/v1/nodes/{uuid}/conflicts/resolve', summary: 'Resolve open MAC or serial conflicts of a node (optionally one kind or value; audited)', tag: 'nodes', auth: 'admin' },
  { method: 'put', path: '/api/v1/nodes/{uuid}/bmc', summary: 'Enrol the BMC (password encrypted at rest, never returned)', tag: 'nodes', auth: 'admin', request: BmcInputBody },
  { method: 'get', path: '/api/v1/nodes/{uuid}/bmc', summary: 'BMC settings without the password', tag: 'nodes', auth: 'viewer' },
  { method: 'get', path: '/healthz', summary: 'Process is alive', tag: 'ops', auth: 'none' },
  { method: 'get', path: '/readyz', summary: 'Database reachable', tag: 'ops', auth: 'none' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'ops', auth: 'none', produces: 'text/plain' },
];

export function openApiDocument(routes: RouteDoc[], version = '0.1.0') {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(r.auth === 'none' ? { security: [] } : { security: [{ bearer: [] }], 'x-role': r.auth }),
      ...(r.request ? { requestBody: { required: true, content: { 'application/json': { schema: schema(r.request) } } } } : {}),
      responses: {
        '200': { description: 'OK', content: { [r.produces ?? 'application/json']: r.response ? { schema: schema(r.response) } : {} } },
        default: { description: 'Error', content: { 'application/json': { schema: schema(ErrorBody) } } },
      },
    };
    (paths[r.path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'bootfarm', version, description: 'Diskless hypervisor boot farm: boot, agent and admin API' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
