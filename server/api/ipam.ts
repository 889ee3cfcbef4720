// IPAM over HTTP (issue 16 item 1): networks (create or replace, read, delete), the allocations, reservations
// and releases. The routes parse (zod), call the store (server/store/ipam.ts, which applies the rules of
// server/domain/ipam.ts) and render; every change is audited. A node's own addresses are handed out by
// GET /api/v1/agent/:uuid/detail (server/api/agent.ts), and a node reports an address in use there too.
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { Mac, SmbiosUuid } from '../contract/common.ts';
import type { IpamStore, NetworkUsage } from '../store/ipam.ts';
import { rowView } from '../store/ipam.ts';
import { audited } from './audit-context.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody, parseWith } from './validate.ts';

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => MiddlewareHandler;

/** what profiles name a network by */
export const NetworkName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a network name is 1-63 lower-case letters, digits and "-", starting with a letter or digit');
const AddressText = z.string().min(2).max(64);
const IfaceName = z.string().regex(/^[a-z][a-z0-9]{0,14}$/, 'an interface name or role is a Linux device name: lower-case letters and digits, at most 15');

export const NetworkBody = z.strictObject({
  cidr: z.string().min(3).max(64),
  gateway: AddressText.nullable().default(null),
  dns: z.array(AddressText).max(8).default([]),
  /** the addresses handed out; without it the whole network (less network, broadcast and gateway) */
  pool: z.strictObject({ start: AddressText, end: AddressText }).nullable().default(null),
  vlan: z.number().int().min(1).max(4094).nullable().default(null),
});

export const ReservationBody = z
  .strictObject({
    network: NetworkName,
    address: AddressText,
    node: SmbiosUuid.optional(),
    /** the node's interface key (profile networks[].interface); default bond0 */
    interface: IfaceName.optional(),
    mac: Mac.optional(),
    note: z.string().max(256).optional(),
  })
  .refine((r) => !r.node !== !r.mac, { message: 'name either a node (node, optionally interface) or a MAC (mac), not both and not neither' })
  .refine((r) => !r.interface || r.node, { message: 'interface goes with node; a MAC reservation is claimed for whichever interface the node asks for' });

export const ReleaseBody = z.strictObject({ network: NetworkName, address: AddressText });

const AllocationsQuery = z.strictObject({ network: NetworkName.optional(), node: SmbiosUuid.optional(), state: z.enum(['allocated', 'conflict']).optional() });
const DeleteQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });

export const IPAM_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/networks', summary: 'IPAM networks with their pools and usage (sizes as decimal strings: an IPv6 pool does not fit a number)', tag: 'ipam', auth: 'viewer' },
  { method: 'get', path: '/api/v1/networks/{name}', summary: 'One IPAM network with its usage', tag: 'ipam', auth: 'viewer' },
  { method: 'put', path: '/api/v1/networks/{name}', summary: 'Create or replace an IPAM network (cidr v4 or v6, gateway, dns, pool, vlan); 409 when held addresses would fall outside it or on its gateway', tag: 'ipam', auth: 'admin', request: NetworkBody },
  { method: 'delete', path: '/api/v1/networks/{name}', summary: 'Delete an IPAM network; 409 network_in_use while it holds addresses unless ?force=true (they go with it)', tag: 'ipam', auth: 'admin' },
  { method: 'get', path: '/api/v1/ipam/allocations', summary: 'Addresses held (filters: network, node, state=allocated|conflict)', tag: 'ipam', auth: 'viewer' },
  { method: 'post', path: '/api/v1/ipam/reservations', summary: "Pin an address to a node's interface (replacing the one it held) or to a MAC; 409 address_taken naming the holder", tag: 'ipam', auth: 'operator', request: ReservationBody },
  { method: 'post', path: '/api/v1/ipam/release', summary: 'Free an address: an allocation, a reservation, or a conflict once the other device is gone', tag: 'ipam', auth: 'operator', request: ReleaseBody },
];

export const networkView = (u: NetworkUsage) => ({
  name: u.network.name,
  cidr: u.network.cidr,
  family: u.network.family,
  gateway: u.network.gateway,
  dns: u.network.dns,
  pool: u.pool,
  vlan: u.network.vlan,
  usage: { size: String(u.usage.size), used: String(u.usage.used), free: String(u.usage.free), allocated: u.usage.allocated, reserved: u.usage.reserved, conflict: u.usage.conflict },
  createdAt: u.network.createdAt.toISOString(),
  updatedAt: u.network.updatedAt.toISOString(),
});

export function ipamRoutes({ store }: { store: IpamStore }, requireRole: RequireRole): Hono {
  const app = new Hono();
  const nameParam = (v: string | undefined) => parseWith(NetworkName, v);

  app.get('/networks', requireRole('viewer'), async (c) => c.json({ networks: (await store.listNetworks()).map(networkView) }));

  app.get('/networks/:name', requireRole('viewer'), async (c) => c.json(networkView(await store.getNetwork(nameParam(c.req.param('name'))))));

  app.put('/networks/:name', requireRole('admin'), async (c) => {
    const name = nameParam(c.req.param('name'));
    const body = await jsonBody(c, NetworkBody);
    const spec = { name, cidr: body.cidr, gateway: body.gateway, dns: body.dns, poolStart: body.pool?.start ?? null, poolEnd: body.pool?.end ?? null, vlan: body.vlan };
    const res = await audited(c, 'network.put', { kind: 'network', id: name }, (audit) => store.putNetwork(spec, { audit }));
    return c.json(networkView(await store.getNetwork(name)), res.created ? 201 : 200);
  });

  app.delete('/networks/:name', requireRole('admin'), async (c) => {
    const name = nameParam(c.req.param('name'));
    const force = parseWith(DeleteQuery, c.req.query()).force === 'true';
    const res = await audited(c, force ? 'network.delete.forced' : 'network.delete', { kind: 'network', id: name }, (audit) => store.deleteNetwork(name, { force, audit }));
    return c.json({ deleted: name, allocations: res.allocations });
  });

  app.get('/ipam/allocations', requireRole('viewer'), async (c) => {
    const q = parseWith(AllocationsQuery, c.req.query());
    return c.json({ allocations: (await store.allocations(q)).map(rowView) });
  });

  app.post('/ipam/reservations', requireRole('operator'), async (c) => {
    const b = await jsonBody(c, ReservationBody);
    const res = await audited(c, 'ipam.reserve', { kind: 'network', id: b.network }, (audit) => store.reserve({ network: b.network, address: b.address, nodeUuid: b.node ?? null, interface: b.interface ?? null, mac: b.mac ?? null, note: b.note ?? null }, { audit }));
    return c.json({ ...rowView(res.row), replaced: res.replaced });
  });

  app.post('/ipam/release', requireRole('operator'), async (c) => {
    const b = await jsonBody(c, ReleaseBody);
    const row = await audited(c, 'ipam.release', { kind: 'network', id: b.network }, (audit) => store.release(b.network, b.address, { audit }));
    return c.json({ released: rowView(row) });
  });

  return app;
}
