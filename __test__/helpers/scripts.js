'use strict';
// Scripts run as processes of their own, for the tests that need one (worker
// threads, cluster, a process that must exit by itself), and free ports for them.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const assert = require('node:assert/strict');
const { after } = require('node:test');
const { spawn } = require('node:child_process');

/** A port nothing listens on at 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A temporary folder for a test file's scripts, removed when the file's tests are done. */
function scriptDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `runner-native-${prefix}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs Node with `args` (a script's path, or e.g. `['-e', source]`). It must
 * exit by itself within `ms` (it is killed then), with code 0 and not by a
 * signal; `what` names it in the failure. Resolves what it printed.
 */
async function runToExit(args, { ms = 30000, cwd, what = 'the process' } = {}) {
  const argv = Array.isArray(args) ? args : [args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const outcome = await new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('timeout');
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
  const seen = `stdout: ${out}\nstderr: ${err}`;
  assert.notEqual(outcome, 'timeout', `${what} did not exit by itself within ${ms}ms\n${seen}`);
  assert.equal(outcome.signal, null, `${what} died of ${outcome.signal}\n${seen}`);
  assert.equal(outcome.code, 0, `exit code ${outcome.code}\n${seen}`);
  return { out, seen };
}

/**
 * A runner of scenario scripts in `dir`: each is `prelude`, then `body` in an
 * async function that prints `done` when it ends; a throw fails the process.
 * The script must print `done` last and exit by itself (`runToExit`).
 */
function scenarioRunner(dir, prelude, { ms: defaultMs = 30000 } = {}) {
  let count = 0;
  return async (body, ms = defaultMs) => {
    const file = path.join(dir, `scenario-${++count}.js`);
    fs.writeFileSync(
      file,
      `${prelude}\n(async () => {\n${body}\nconsole.log('done');\n})().catch((e) => { console.error(e); process.exit(1); });\n`,
    );
    const { out, seen } = await runToExit(file, { ms });
    assert.equal(out.trim().split('\n').pop(), 'done', seen);
  };
}

module.exports = { freePort, scriptDir, runToExit, scenarioRunner };
