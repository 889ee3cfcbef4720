// Vendor firmware version strings compared segment-wise. There is no standard: BIOS vendors print "2.10.2",
// HPE prints a ROM family and a version ("U46 v2.58 (03/12/2022)"), old Dell BIOSes "A12", Mellanox
// "16.35.2000", Intel NICs an NVM version plus an eetrack id ("4.40 0x8001c967 1.3429.0"). SMBIOS
// (DMTF DSP0134 type 0, "BIOS Version") and `ethtool -i` ("firmware-version") define these as free text.
//
// So the rule is deliberately simple and conservative:
//   - a version is a list of tokens split at anything that is not a letter or digit (".", "-", "_", spaces,
//     brackets): hex numbers ("0x80001234", compared as numbers), decimal numbers, and words. A word that
//     mixes letters and digits ("U46", "P89", "IVE164L") is one token: in these schemes it names a product
//     line or build train, not a version, so "U46" and "U30" are different things rather than 46 > 30;
//   - a "v"/"V" directly before a number is noise ("v2.58" = "2.58");
//   - tokens are compared left to right: numbers numerically ("2.10" > "2.9", "01" = "1"), words
//     case-insensitively and only for equality — two different words ("U46" vs "U30", or a number against
//     a word) mean two different product lines or schemes, and the answer is "not comparable" rather
//     than a guess. A "minimum" rule over incomparable strings reports `unknown`, never `compliant`;
//   - when one list runs out, the rest of the other decides: only zeros left means equal ("2.10" = "2.10.0"),
//     anything else means the longer one is newer ("1.4" < "1.4.1", "P89" < "P89 v1.0").

export type VersionToken = { kind: 'num'; value: bigint; text: string } | { kind: 'word'; value: string; text: string };

export function tokenizeVersion(version: string): VersionToken[] {
  const tokens: VersionToken[] = [];
  for (const t of version.match(/[0-9a-z]+/gi) ?? []) {
    if (/^0x[0-9a-f]+$/i.test(t) || /^\d+$/.test(t)) tokens.push({ kind: 'num', value: BigInt(t), text: t });
    // "v2.58": the v marks a version, it is not a product line
    else if (/^v\d+$/i.test(t)) tokens.push({ kind: 'num', value: BigInt(t.slice(1)), text: t });
    else tokens.push({ kind: 'word', value: t.toLowerCase(), text: t });
  }
  return tokens;
}

/** -1 when a < b, 0 when equal, 1 when a > b, null when the two strings follow different schemes. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  const ta = tokenizeVersion(a);
  const tb = tokenizeVersion(b);
  if (ta.length === 0 || tb.length === 0) return ta.length === tb.length ? 0 : null;
  const n = Math.min(ta.length, tb.length);
  for (let i = 0; i < n; i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (x.kind !== y.kind) return null;
    if (x.kind === 'num' && y.kind === 'num') {
      if (x.value !== y.value) return x.value < y.value ? -1 : 1;
    } else if (x.value !== y.value) {
      return null;
    }
  }
  const rest = ta.length > n ? ta.slice(n) : tb.slice(n);
  if (rest.every((t) => t.kind === 'num' && t.value === 0n)) return 0;
  return ta.length > tb.length ? 1 : -1;
}

/** Version rules a baseline component may carry (exactly one per component). */
export type VersionRule = { exact: string } | { minimum: string } | { allowed: string[] };

export type RuleVerdict = 'compliant' | 'outdated' | 'unknown';

/** Whether `current` satisfies the rule. "exact" and "allowed" accept the same version spelled with trailing
 * zeros ("2.10" vs "2.10.0"); anything not provably equal or newer is outdated, except incomparable strings
 * under "minimum", which are unknown (a person must look). */
export function checkVersion(current: string | null | undefined, rule: VersionRule): RuleVerdict {
  if (current === null || current === undefined || current.trim() === '') return 'unknown';
  if ('exact' in rule) return sameVersion(current, rule.exact) ? 'compliant' : 'outdated';
  if ('allowed' in rule) return rule.allowed.some((v) => sameVersion(current, v)) ? 'compliant' : 'outdated';
  const c = compareVersions(current, rule.minimum);
  if (c === null) return 'unknown';
  return c >= 0 ? 'compliant' : 'outdated';
}

function sameVersion(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase() || compareVersions(a, b) === 0;
}

/** How a rule reads to a person: "≥ 1.4.9", "= 2.10", "one of 1.0, 1.1". */
export function describeRule(rule: VersionRule): string {
  if ('exact' in rule) return `= ${rule.exact}`;
  if ('minimum' in rule) return `≥ ${rule.minimum}`;
  return `one of ${rule.allowed.join(', ')}`;
}
