'use strict';

// `npm install` hook: in a source checkout, build the release addon (cargo
// makes this quick when nothing changed); in a published package, use the
// prebuilt binary it ships.
const { existsSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const prebuilt = readdirSync(root).some((f) => f.startsWith('runner-native.') && f.endsWith('.node'));
const fromSource = existsSync(join(root, 'Cargo.toml')) && existsSync(join(root, '.git'));

if (!fromSource && prebuilt) {
  process.exit(0);
}
if (!fromSource) {
  console.error('@bluelibs/runner-native: no prebuilt binary for this platform and no sources to build from');
  process.exit(1);
}
const result = spawnSync(
  process.platform === 'win32' ? 'npx.cmd' : 'npx',
  ['napi', 'build', '--platform', '--release', '--features', 'node', '--js', 'native.js', '--dts', 'native.d.ts'],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status === null ? 1 : result.status);
