import { describe, expect, it } from 'vitest';
import { BaselineDocumentError, parseBaselineDocument } from './firmware-baseline.ts';

const SHA = 'b'.repeat(64);

const GOOD = `# Dell R650, Q3 firmware set
name: r650-2026q3
selector:
  manufacturer: Dell Inc.
  product: PowerEdge R650
policy: enforce
maxAttempts: 2
components:
  - type: bios
    minimum: 1.4.9
    update:
      sha256: ${SHA}
      command: /usr/bin/flash-bios "$BOOTFARM_FIRMWARE_FILE"
      reboot: true
  - type: nic
    pciId: 8086:1592
    allowed: ["4.40 0x8001c967 1.3429.0"]
`;

function errorsOf(text: string, source = 'b.yaml'): string[] {
  try {
    parseBaselineDocument(text, source);
  } catch (e) {
    if (e instanceof BaselineDocumentError) return e.message.split('\n').slice(1).map((l) => l.trim());
    throw e;
  }
  throw new Error('expected the document to be rejected');
}

describe('parseBaselineDocument', () => {
  it('reads secureBoot: required, and names the line of any other value', () => {
    expect(parseBaselineDocument(GOOD, 'r650.yaml')[0]!.secureBoot).toBeUndefined();
    expect(parseBaselineDocument(`${GOOD}secureBoot: required\n`, 'r650.yaml')[0]!.secureBoot).toBe('required');
    // "yes" is not a policy: a typo must not silently drop the requirement
    const [err] = errorsOf(`${GOOD}secureBoot: yes\n`);
    expect(err).toMatch(/^b\.yaml:18:13: secureBoot: Invalid input: expected "required"/);
  });

  it('reads a YAML baseline with defaults filled in', () => {
    const [b] = parseBaselineDocument(GOOD, 'r650.yaml');
    expect(b).toMatchObject({ name: 'r650-2026q3', policy: 'enforce', maxAttempts: 2 });
    expect(b!.components[0]!.update).toEqual({ sha256: SHA, command: '/usr/bin/flash-bios "$BOOTFARM_FIRMWARE_FILE"', reboot: true, timeoutSeconds: 1800 });
    // YAML would read 1.4.9 as a string, but a bare 2.10 as the number 2.1: the schema wants strings (see below)
    expect(b!.components[0]!.minimum).toBe('1.4.9');
    expect(b!.components[1]!.pciId).toBe('8086:1592');
  });

  it('reads JSON, a list, and several documents', () => {
    const one = { name: 'a', selector: { manufacturer: 'X', product: 'Y' }, components: [{ type: 'bmc', exact: '2.87' }] };
    expect(parseBaselineDocument(JSON.stringify(one), 'a.json').map((b) => b.name)).toEqual(['a']);
    expect(parseBaselineDocument(JSON.stringify([one, { ...one, name: 'b' }])).map((b) => b.name)).toEqual(['a', 'b']);
    expect(parseBaselineDocument(`${GOOD}---\n${GOOD.replace('r650-2026q3', 'other')}---\n`).map((b) => b.name)).toEqual(['r650-2026q3', 'other']);
  });

  const bad: Array<[string, string, string[]]> = [
    [
      'a bare number where a version string belongs (YAML reads 2.10 as 2.1)',
      GOOD.replace('minimum: 1.4.9', 'minimum: 2.10'),
      ['b.yaml:10:14: components[0].minimum: Invalid input: expected string, received number'],
    ],
    ['a misspelt field is named at its line', GOOD.replace('    minimum: 1.4.9', '    minimun: 1.4.9'), ['b.yaml:10:5: components[0].minimun: unknown field', 'b.yaml:9:5: components[0]: needs a version rule: one of exact, minimum, allowed']],
    ['two rules on one component', GOOD.replace('    minimum: 1.4.9', '    minimum: 1.4.9\n    exact: 1.5.0'), ['b.yaml:10:14: components[0].minimum: has more than one version rule (exact, minimum); keep one']],
    ['a bad digest', GOOD.replace(SHA, 'abc'), ['b.yaml:12:15: components[0].update.sha256: must be a sha256 digest: 64 lower-case hex characters']],
    ['an unknown policy', GOOD.replace('policy: enforce', 'policy: enforced'), ['b.yaml:6:9: policy: Invalid option: expected one of "report"|"enforce"']],
    ['a nic with driver and pciId', GOOD.replace('    pciId: 8086:1592', '    pciId: 8086:1592\n    driver: ice'), ['b.yaml:16:12: components[1].pciId: a nic component matches by exactly one of driver or pciId']],
    ['optional on a non-nic component', GOOD.replace('    minimum: 1.4.9', '    minimum: 1.4.9\n    optional: true'), ['b.yaml:11:15: components[0].optional: optional only applies to nic components']],
    ['a missing selector points at the document', GOOD.replace(/selector:\n.*\n.*\n/, ''), ['b.yaml:2:1: selector: Invalid input: expected object, received undefined']],
    ['YAML syntax errors carry their position', 'name: a\n  bad: [\n', [
        'b.yaml:1:7: Nested mappings are not allowed in compact mappings',
        'b.yaml:1:7: Implicit keys need to be on a single line',
        'b.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ],],
    ['duplicate keys are refused', 'name: a\nname: b\n', ['b.yaml:2:1: Map keys must be unique']],
    ['the same baseline twice in one file', `${GOOD}---\n${GOOD}`, ['b.yaml:20:7: name: baseline "r650-2026q3" appears twice in this file (first at line 2)']],
    ['an empty file', '', ['b.yaml: no baseline in the document']],
  ];
  it.each(bad)('rejects %s', (_name, text, want) => {
    expect(errorsOf(text)).toEqual(want);
  });
});
