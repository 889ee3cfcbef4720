// The cabling document as operators write it: YAML and CSV, and every bad row named.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CablingDocumentError, parseCablingDocument } from './cabling-document.ts';

const issuesOf = (text: string, format: 'yaml' | 'csv') => {
  try {
    parseCablingDocument(text, format);
  } catch (e) {
    if (e instanceof CablingDocumentError) return e.issues;
    throw e;
  }
  throw new Error('expected a CablingDocumentError');
};

describe('parseCablingDocument', () => {
  it('reads YAML plans per node and per rack', () => {
    const yaml = `plans:
  - node: SN-0001
    policy: block
    links:
      - { nic: eno1, switch: leaf-a, port: Ethernet1/1 }
      - { nic: "52:54:00:00:00:02", switch: leaf-b, port: Ethernet1/1 }
  - rack: r12
    links: [{ nic: eno1, switch: leaf-r12, port: "1" }]
`;
    expect(parseCablingDocument(yaml, 'yaml')).toEqual([
      { scope: 'node', key: 'SN-0001', policy: 'block', links: [{ nic: 'eno1', switch: 'leaf-a', port: 'Ethernet1/1' }, { nic: '52:54:00:00:00:02', switch: 'leaf-b', port: 'Ethernet1/1' }] },
      { scope: 'rack', key: 'r12', policy: 'warn', links: [{ nic: 'eno1', switch: 'leaf-r12', port: '1' }] },
    ]);
  });

  it('reads CSV rows into one plan per node, with quoted fields', () => {
    const csv = 'node,rack,nic,switch,port,policy\nSN-1,,eno1,leaf-a,"Ethernet1/1",block\nSN-1,,eno2,leaf-b,Ethernet1/1,block\n,r12,eno1,"leaf, r12",7,\n';
    expect(parseCablingDocument(csv, 'csv')).toEqual([
      { scope: 'node', key: 'SN-1', policy: 'block', links: [{ nic: 'eno1', switch: 'leaf-a', port: 'Ethernet1/1' }, { nic: 'eno2', switch: 'leaf-b', port: 'Ethernet1/1' }] },
      { scope: 'rack', key: 'r12', policy: 'warn', links: [{ nic: 'eno1', switch: 'leaf, r12', port: '7' }] },
    ]);
  });

  it('names every bad CSV row, not only the first', () => {
    const csv = 'node,rack,nic,switch,port,policy\nSN-1,,eno1,leaf-a,1,sometimes\n,,eno1,leaf-a,1,\nSN-2,,eno1,,1,\nSN-3,,eno1,leaf,1\nSN-1,,eno1,leaf-b,2,warn\n';
    const issues = issuesOf(csv, 'csv');
    expect(issues.map((i) => i.where)).toEqual(['row 2.policy', 'row 3', 'row 4.switch', 'row 5']);
    expect(issues[0]!.message).toBe('must be warn or block');
    expect(issues[1]!.message).toBe('give exactly one of node or rack');
    expect(issues[3]!.message).toBe('has 5 fields, the header 6');
  });

  it('refuses a duplicate NIC and conflicting policies for one node', () => {
    const csv = 'node,nic,switch,port,policy\nSN-1,eno1,a,1,block\nSN-1,eno1,a,2,block\nSN-1,eno2,a,3,warn\n';
    expect(issuesOf(csv, 'csv').map((i) => `${i.where}: ${i.message}`)).toEqual(['row 3: node SN-1 plans NIC eno1 twice', 'row 4: node SN-1 has policy warn here and block earlier']);
  });

  it('names bad YAML entries by path, and refuses a document without plans', () => {
    const issues = issuesOf('plans:\n  - node: a\n    links: [{ nic: eno1, switch: s }]\n  - rack: r\n    node: n\n    links: [{ nic: x, switch: y, port: z }]\n', 'yaml');
    expect(issues.map((i) => i.where)).toEqual(['plans[0].links.0.port', 'plans[1]']);
    expect(issuesOf('hello: 1', 'yaml')).toEqual([{ where: 'document', message: 'needs a top-level "plans:" list' }]);
    expect(issuesOf('a,b\n', 'csv')[0]!.where).toBe('row 1');
  });

  it('names the line of every bad YAML value and CSV row', () => {
    const yaml = 'plans:\n  - node: a\n    links:\n      - nic: eno1\n        switch: ""\n        port: 1\n  - rack: r\n    policy: sometimes\n    links: [{ nic: x, switch: y, port: z }]\n';
    const issues = issuesOf(yaml, 'yaml');
    expect(issues.map((i) => [i.where, i.line])).toEqual([['plans[0].links.0.switch', 5], ['plans[1].policy', 8]]);
    expect(() => parseCablingDocument(yaml, 'yaml')).toThrow('line 5: plans[0].links.0.switch: is empty; line 8: plans[1].policy: must be warn or block');
    expect(issuesOf('plans:\n  - node: [\n', 'yaml')[0]).toMatchObject({ where: 'document', message: expect.stringMatching(/^is not YAML/) });
    const csv = issuesOf('node,nic,switch,port\nSN-1,eno1,a,1\n\nSN-2,eno1,,1\n', 'csv');
    expect(csv).toEqual([{ where: 'row 4.switch', message: 'is empty', line: 4 }]);
  });

  it('refuses deep nesting before parsing it', () => {
    expect(issuesOf(`plans: ${'['.repeat(5000)}`, 'yaml')).toEqual([{ where: 'document', message: 'nests deeper than 64 levels' }]);
  });

  it('never throws anything but a CablingDocumentError on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.constantFrom('yaml' as const, 'csv' as const), (text, format) => {
        try {
          parseCablingDocument(text, format);
        } catch (e) {
          expect(e).toBeInstanceOf(CablingDocumentError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
