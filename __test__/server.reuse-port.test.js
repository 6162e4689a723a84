'use strict';
// `reusePort` (SO_REUSEPORT): several processes of a `cluster` listen on one port, and the
// kernel spreads new connections over them. The cluster runs in a child process of its own
// (a primary forking real cluster workers), so a crash or a leftover process shows there.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { loadNative, TOKEN } = require('./helpers');
const { freePort, scriptDir, runToExit } = require('./helpers/scripts');

const ROOT = path.resolve(__dirname, '..');
const { TunnelServer } = loadNative();
const dir = scriptDir('reuse-port');

const linux = process.platform === 'linux';

// One call on a connection of its own (so each may land on another process).
function call(port, id) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/__runner/task/${id}`,
        agent: false,
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('error', reject);
    req.end('{"input":null}');
  });
}

// The primary: forks `workers` cluster workers running WORKER (a TunnelServer, or a Runner
// app with nativeExposure, on `port` with reusePort), waits until each listens, runs
// `check` (the scenario's body, given the worker pids), prints its JSON result and exits.
const PRIMARY = (mode, port, workers, check) => `
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const ROOT = ${JSON.stringify(ROOT)};
const TOKEN = ${JSON.stringify(TOKEN)};
const PORT = ${port};
// The script lives outside the package: its dependencies resolve from there.
const load = (m) => require(require.resolve(m, { paths: [ROOT] }));
${call.toString()}
if (cluster.isPrimary) {
  // Never outlives the test that started it.
  setTimeout(() => process.exit(2), 55000).unref();
  (async () => {
    const ready = [];
    for (let i = 0; i < ${workers}; i++) {
      const w = cluster.fork();
      ready.push(new Promise((resolve, reject) => {
        w.once('message', (m) => (m && m.listening ? resolve(w) : reject(new Error(JSON.stringify(m)))));
        w.once('exit', (code) => reject(new Error('worker exited with ' + code)));
      }));
    }
    const list = await Promise.all(ready);
    const pids = list.map((w) => w.process.pid);
    const result = await (async (workers, pids) => {${check}})(list, pids);
    console.log('RESULT ' + JSON.stringify(result));
    for (const w of Object.values(cluster.workers)) w.kill();
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else if (${JSON.stringify(mode)} === 'standalone') {
  const { TunnelServer } = require(ROOT);
  const server = new TunnelServer({ port: PORT, host: '127.0.0.1', reusePort: true, auth: { token: TOKEN } });
  server.registerTask('rp.pid', async () => process.pid);
  server.listen().then(() => process.send({ listening: true }), (e) => process.send({ error: String(e) }));
} else {
  const { r, run, globals } = load('@bluelibs/runner');
  const { nativeExposure } = require(ROOT + '/runner');
  const pid = r.task('rp.pid').run(async () => process.pid).build();
  const tunnel = r.resource('rp.tunnel').tags([globals.tags.tunnel])
    .init(async () => ({ mode: 'server', transport: 'http', tasks: [pid.id], events: [] })).build();
  const app = r.resource('rp.app').register([pid, tunnel, nativeExposure.with({
    http: { listen: { port: PORT, host: '127.0.0.1', reusePort: true }, auth: { token: TOKEN } },
  })]).build();
  run(app, { logs: { printThreshold: null }, shutdownHooks: false })
    .then(() => process.send({ listening: true }), (e) => process.send({ error: String(e) }));
}
`;

let scripts = 0;
// Runs a primary script; returns what it printed last as JSON. It must exit by itself.
async function runCluster(mode, workers, check, ms = 60000) {
  const port = await freePort();
  const file = path.join(dir, `primary-${++scripts}.js`);
  fs.writeFileSync(file, PRIMARY(mode, port, workers, check));
  const { out, seen } = await runToExit(file, { ms, cwd: ROOT, what: 'the cluster' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, seen);
  return JSON.parse(line.slice('RESULT '.length));
}

// Calls on fresh connections until every pid answered (or `max` calls); the answers' pids.
const SPREAD = `
  const seen = {};
  for (let i = 0; i < 200 && Object.keys(seen).length < pids.length; i++) {
    const res = await call(PORT, 'rp.pid');
    if (res.status !== 200) return { error: res.status + ' ' + res.body };
    const pid = JSON.parse(res.body).result;
    seen[pid] = (seen[pid] || 0) + 1;
  }
`;

describe('reusePort (SO_REUSEPORT)', { skip: !linux && 'SO_REUSEPORT spreads connections on Linux only' }, () => {
  it('two cluster workers listen on one port; new connections reach both', async () => {
    const r = await runCluster('standalone', 2, `${SPREAD} return { pids, seen };`);
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(Object.keys(r.seen).map(Number).sort(), r.pids.slice().sort());
  });

  it('a worker that exits leaves the others serving the port', async () => {
    const r = await runCluster(
      'standalone',
      2,
      `
      const gone = workers[0];
      const exited = new Promise((resolve) => gone.once('exit', resolve));
      gone.process.kill('SIGKILL');
      await exited;
      const answers = [];
      for (let i = 0; i < 20; i++) {
        const res = await call(PORT, 'rp.pid');
        answers.push(res.status === 200 ? JSON.parse(res.body).result : res.status);
      }
      return { left: pids[1], answers };
    `,
    );
    assert.deepEqual(new Set(r.answers), new Set([r.left]));
  });

  it('a Runner app in each cluster worker (nativeExposure http.listen.reusePort); Runner client answered', async () => {
    const r = await runCluster(
      'runner',
      2,
      `${SPREAD}
      const { createHttpClient, Serializer } = load('@bluelibs/runner');
      const client = createHttpClient({ baseUrl: 'http://127.0.0.1:' + PORT + '/__runner', auth: { token: TOKEN }, serializer: new Serializer() });
      const viaClient = await client.task('rp.pid');
      return { pids, seen, viaClient };
    `,
    );
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(Object.keys(r.seen).map(Number).sort(), r.pids.slice().sort());
    assert.ok(r.pids.includes(r.viaClient), `${r.viaClient} is one of ${r.pids}`);
  });

  it('in one process: a second server on the port needs reusePort on both', async () => {
    const opts = (reusePort) => ({ host: '127.0.0.1', reusePort, auth: { token: TOKEN } });
    const first = new TunnelServer({ ...opts(true), port: 0 });
    first.registerTask('rp.who', async () => 'first');
    const { port } = await first.listen();
    const plain = new TunnelServer({ ...opts(false), port });
    await assert.rejects(plain.listen(), (e) => e.code === 'EADDRINUSE');
    const second = new TunnelServer({ ...opts(true), port });
    second.registerTask('rp.who', async () => 'second');
    await second.listen();
    await first.close();
    // The port stays served by the one left.
    for (let i = 0; i < 5; i++) {
      const res = await call(port, 'rp.who');
      assert.equal(res.status, 200, res.body);
      assert.equal(JSON.parse(res.body).result, 'second');
    }
    await second.close();
  });

  it('without reusePort the port is exclusive (EADDRINUSE), as before', async () => {
    const first = new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: TOKEN } });
    const { port } = await first.listen();
    const other = new TunnelServer({ port, host: '127.0.0.1', reusePort: true, auth: { token: TOKEN } });
    await assert.rejects(other.listen(), (e) => e.code === 'EADDRINUSE');
    await first.close();
  });
});

describe('reusePort option checking', () => {
  it('must be a boolean', () => {
    assert.throws(() => new TunnelServer({ reusePort: 'yes' }), /option "reusePort" must be a boolean/);
  });
});
