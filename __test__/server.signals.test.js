'use strict';

// Ctrl-C while serving: the process must exit, as a plain Node server's does.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

test('SIGINT while serving (a request in flight) ends the process', async () => {
  const script = `
    const { TunnelServer } = require(${JSON.stringify(ROOT)})
    const s = new TunnelServer({ port: 0, auth: { allowAnonymous: true } })
    s.registerTask('hang', () => new Promise(() => {}))
    s.listen().then(({ url }) => {
      fetch(url + '/__runner/task/hang', { method: 'POST', body: '{}' }).catch(() => {})
      setTimeout(() => process.stdout.write('ready\\n'), 100)
    })
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      if (String(d).includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.kill('SIGINT');
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000).unref());
  const outcome = await Promise.race([exited, timeout]);
  if (outcome === 'timeout') child.kill('SIGKILL');
  assert.notEqual(outcome, 'timeout', 'process did not exit after SIGINT');
  assert.equal(outcome.signal, 'SIGINT');
});
