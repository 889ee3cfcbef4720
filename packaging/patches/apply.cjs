#!/usr/bin/env node
// Patches to dependencies, applied after `npm ci` (package.json postinstall; packaging/oci/stage.sh calls it after its
// --ignore-scripts install). Each patch names the exact version it fits: another version is left alone with a warning
// (server/db/pool.pg.test.ts then fails if the bug is still there), and a file of the right version that has
// neither the original text nor the patched one stops the install.
//
// Why not patch-package: one four-line fix does not justify its dependency tree, and this checks the version and the
// text it replaces, which a stale .patch file does not do by itself.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const MARKER = '/* bootfarm patch: porsager/postgres#1208 */';
const PATCHES = [
  {
    // postgres.js 3.4.9 crashes the process (TypeError: Cannot read properties of null (reading 'write')) when a
    // statement is written to a connection the server has already ended — a transaction whose session PostgreSQL
    // closed for idle_in_transaction_session_timeout, then resumed (a SIGSTOPped replica that wakes up; issue 14).
    // Upstream: porsager/postgres #1154 and #1208, fixes in PRs #1176 and #1209, not released as of 3.4.9.
    // The patch rejects the statement with CONNECTION_CLOSED instead, as a statement in flight already is.
    pkg: 'postgres',
    version: '3.4.9',
    files: ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'],
    find: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    replace:
      '  function nextWrite(fn) {\n' +
      `    if (!socket) { ${MARKER}\n` +
      '      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n' +
      '      chunk = nextWriteTimer = null\n' +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      '      return false\n' +
      '    }\n' +
      '    const x = socket.write(chunk, fn)',
  },
];

/** node_modules/<pkg> seen from dir upwards (a global install nests the dependencies under the package). */
function findPackage(dir, pkg) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const p = path.join(d, 'node_modules', pkg);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
    if (path.dirname(d) === d) return undefined;
  }
}

let failed = false;
const root = process.argv[2] ?? path.join(__dirname, '..', '..');
for (const patch of PATCHES) {
  const dir = findPackage(root, patch.pkg);
  if (!dir) continue; // not installed here (a production install without this dependency)
  const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (version !== patch.version) {
    console.warn(`bootfarm: ${patch.pkg} is ${version}, the patch in packaging/patches/apply.cjs fits ${patch.version}: not applied`);
    continue;
  }
  for (const rel of patch.files) {
    const file = path.join(dir, rel);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    if (text.includes(MARKER)) continue;
    if (!text.includes(patch.find)) {
      console.error(`bootfarm: ${file} (${patch.pkg} ${version}) has not the text the patch replaces`);
      failed = true;
      continue;
    }
    fs.writeFileSync(file, text.replace(patch.find, patch.replace));
  }
}
process.exit(failed ? 1 : 0);
