// The inventory parser and the delete rule as plain functions (the API test drives them end to end).
import { describe, expect, it } from 'vitest';
import { deleteRefusal, InventoryFormatError, parseCsv, parseInventory } from './inventory.ts';
import { NODE_STATES } from '../contract/lifecycle.ts';

describe('parseCsv (RFC 4180)', () => {
  it('keeps quoted commas, doubled quotes and line breaks, and numbers each record by the line it starts on', () => {
    expect(parseCsv('a,b\r\n"x,1","say ""hi"""\n"two\nlines",z\n\n last ,')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x,1', 'say "hi"'] },
      { line: 3, fields: ['two\nlines', 'z'] },
      { line: 6, fields: [' last ', ''] },
    ]);
  });
  it('refuses an unclosed quote, naming the line', () => {
    expect(() => parseCsv('uuid\n"abc\n')).toThrow(new InventoryFormatError('line 2: a quoted field is not closed'));
  });
});

describe('parseInventory', () => {
  it('reports a record with the wrong number of fields and a BMC address twice, each with its row', () => {
    const u = (n: number) => `1e7e0000-0000-4000-8000-00000000000${n}`;
    const r = parseInventory('csv', `uuid,bmc_address,bmc_username,bmc_password\n${u(1)},10.0.0.1,a,b\n${u(2)}\n${u(3)},10.0.0.1,a,b\n`);
    expect(r.rows.map((x) => x.row)).toEqual([2, 4]);
    expect(r.errors).toEqual([
      { row: 3, message: 'has 1 fields, the header has 4' },
      { row: 4, field: 'bmc.address', message: 'BMC address 10.0.0.1 is also on row 2' },
    ]);
  });
  it('refuses an empty file and one without a uuid column', () => {
    expect(() => parseInventory('csv', '')).toThrow(/the inventory is empty/);
    expect(() => parseInventory('csv', 'serial\nX\n')).toThrow(/no "uuid" column/);
    expect(() => parseInventory('yaml', 'just: a map')).toThrow(/must be a list of nodes/);
  });
});

describe('deleteRefusal', () => {
  it('needs force exactly for nodes that run or are booting', () => {
    const refused = NODE_STATES.filter((s) => deleteRefusal(s, false) !== null);
    expect(refused).toEqual(['inspecting', 'firmware-updating', 'provisioning', 'active', 'rebuilding', 'maintenance']);
    expect(NODE_STATES.every((s) => deleteRefusal(s, true) === null)).toBe(true);
  });
});
