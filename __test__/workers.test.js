'use strict';
// The addon in worker_threads: loaded, served from and left behind by one worker after
// another. Each scenario runs in a child process, so that a crash shows as its exit signal
// and a thread or handle left behind shows as a process that does not exit by itself.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { scriptDir, scenarioRunner } = require('./helpers/scripts');
const { TOKEN } = require('./helpers');

const ROOT = path.resolve(__dirname, '..');
const dir = scriptDir('workers');

// Shared by the scripts: worker plumbing, one HTTP call, and the server threads alive.
const PRELUDE = `
'use strict';
const { Worker } = require('node:worker_threads');
const { once } = require('node:events');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const ROOT = ${JSON.stringify(ROOT)};
const TOKEN = ${JSON.stringify(TOKEN)};

// A worker that loads the package, serves 'w.ping' (its threadId) and 'w.hang' (never
// answers) on \`port\` with \`threads\` HTTP threads (1: a current-thread runtime, more: a
// multi-threaded one), reports { port, threadId }, then closes on 'close', calls
// process.exit on 'exit', and says 'serving' when a 'w.hang' call reaches it.
const SERVER = (port, threads) => \`
  const { TunnelServer } = require(\${JSON.stringify(ROOT)});
  const { parentPort, threadId } = require('node:worker_threads');
  const server = new TunnelServer({ port: \${port}, host: '127.0.0.1', auth: { token: \${JSON.stringify(TOKEN)} }, workerThreads: \${threads} });
  server.registerTask('w.ping', async () => threadId);
  server.registerTask('w.hang', () => { parentPort.postMessage('serving'); return new Promise(() => {}); });
  server.listen().then(({ port }) => parentPort.postMessage({ port, threadId }));
  parentPort.once('message', async (what) => {
    if (what === 'exit') process.exit(0);
    await server.close();
    parentPort.postMessage('closed');
  });
\`;

// \`exited\`: its exit code, watched from the start so that an early exit is not missed.
function startWorker(code) {
  const w = new Worker(code, { eval: true });
  w.exited = once(w, 'exit').then(([c]) => c);
  w.exited.catch(() => {}); // an error also rejects \`message\`, which reports it
  return w;
}
// The next message; rejects when the worker fails instead.
const message = async (w) => (await once(w, 'message'))[0];
const exitCode = (w) => w.exited;

function call(port, id) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/__runner/task/' + id, agent: false,
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end('{"input":1}');
  });
}

async function ping(port, threadId) {
  const res = await call(port, 'w.ping');
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { ok: true, result: threadId });
}

// The server's tokio threads (named runner-native-http, cut to 15 characters) alive now.
function serverThreads() {
  if (!fs.existsSync('/proc/self/task')) return 0;
  return fs.readdirSync('/proc/self/task').filter((t) => {
    try {
      return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').startsWith('runner-native');
    } catch {
      return false; // the thread ended meanwhile
    }
  }).length;
}

function bindAndClose(port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => s.close(resolve));
  });
}

// A server worker's whole life: listen, answer one call, close, exit.
async function serveOnce(port = 0, threads = 1) {
  const w = startWorker(SERVER(port, threads));
  const addr = await message(w);
  await ping(addr.port, addr.threadId);
  w.postMessage('close');
  assert.equal(await message(w), 'closed');
  assert.equal(await exitCode(w), 0);
  return addr;
}
`;

const runScript = scenarioRunner(dir, PRELUDE);

const LOAD_ONLY = `\`require(\${JSON.stringify(ROOT)}); require('node:worker_threads').parentPort.postMessage('loaded')\``;

describe('the addon in worker_threads', () => {
  it('three workers load it one after another, the main thread never does', async () => {
    await runScript(`
      for (let i = 0; i < 3; i++) {
        const w = startWorker(${LOAD_ONLY});
        assert.equal(await message(w), 'loaded');
        assert.equal(await exitCode(w), 0);
      }
    `);
  });

  it('three workers load it one after another, the main thread too', async () => {
    await runScript(`
      require(ROOT);
      for (let i = 0; i < 3; i++) {
        const w = startWorker(${LOAD_ONLY});
        assert.equal(await message(w), 'loaded');
        assert.equal(await exitCode(w), 0);
      }
    `);
  });

  it('workers one after another each listen, answer a call, close and exit', async () => {
    await runScript(`
      for (const threads of [1, 2, 1]) await serveOnce(0, threads);
      assert.equal(serverThreads(), 0, 'a server thread outlived its worker');
    `);
  });

  it('workers in parallel each listen, answer a call, close and exit (two rounds)', async () => {
    await runScript(`
      for (let round = 0; round < 2; round++) {
        const served = await Promise.all([serveOnce(0, 1), serveOnce(0, 2), serveOnce(0, 2)]);
        assert.equal(new Set(served.map((a) => a.port)).size, 3, 'each worker had a port of its own');
      }
      assert.equal(serverThreads(), 0, 'a server thread outlived its worker');
    `);
  });

  it('a worker that exits or is terminated while serving, without close, frees its threads and port', async () => {
    await runScript(`
      let port;
      for (const [how, threads] of [['exit', 1], ['exit', 2], ['terminate', 1], ['terminate', 2]]) {
        const w = startWorker(SERVER(0, threads));
        const addr = await message(w);
        port = addr.port;
        await ping(port, addr.threadId);
        // A call in flight: its handler never answers.
        const hanging = call(port, 'w.hang').then((r) => 'answered ' + r.status, () => 'gone');
        assert.equal(await message(w), 'serving');
        if (how === 'exit') w.postMessage('exit');
        else w.terminate();
        assert.equal(await exitCode(w), how === 'exit' ? 0 : 1);
        assert.equal(serverThreads(), 0, how + '/' + threads + ': a server thread outlived the worker');
        // The connection goes with the server; the client is not left waiting.
        assert.equal(await hanging, 'gone', how + '/' + threads + ': the call in flight');
        await bindAndClose(port);
      }
      // The port is free for the addon too, in a new worker.
      const again = await serveOnce(port);
      assert.equal(again.port, port);
    `);
  });
});
