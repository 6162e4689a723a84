'use strict';

// The benchmark harness runs end to end (one short round, two servers) and
// writes its results. No timing is asserted: only that it ran and its
// correctness checks passed.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const hasWrk = spawnSync('sh', ['-c', 'command -v wrk']).status === 0;

test('bench smoke run completes with valid results', { skip: hasWrk ? false : 'wrk not installed' }, () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-')), 'smoke');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'run.js')], {
    env: { ...process.env, BENCH_SMOKE: '1', BENCH_OUT: out, BENCH_SERVERS: 'native,node-http' },
    encoding: 'utf8',
    timeout: 180000,
  });
  assert.equal(
    r.status,
    0,
    `bench exited ${r.status}: ${(r.stderr || '').slice(-2000)}${(r.stdout || '').slice(-2000)}`,
  );
  const result = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
  for (const [scenario, byServer] of Object.entries(result.summary)) {
    for (const [server, summary] of Object.entries(byServer)) {
      assert.ok(summary.valid, `${scenario} ${server} invalid`);
      assert.ok(summary.rps > 0, `${scenario} ${server} measured nothing`);
    }
  }
  assert.ok(fs.readFileSync(`${out}.svg`, 'utf8').startsWith('<svg'), 'chart written');
});
