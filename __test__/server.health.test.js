'use strict';
// The health and readiness probes (`health: { path, readyPath, readyTimeoutMs }`),
// answered natively without waking JS. The JS-thread-blocked cases run the
// server in a child process (__test__/fixtures/instance.js), so that this
// test's own thread stays free to probe it.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { loadNative, silentLogger, rawRequest, taskReq, sleep, TOKEN } = require('./helpers');

const INSTANCE = path.join(__dirname, 'fixtures', 'instance.js');
const newServer = (opts = {}) => {
  const { TunnelServer } = loadNative();
  return new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: TOKEN }, logger: silentLogger(), ...opts });
};
const probe = (port, p, method = 'GET') => rawRequest({ port }, { method, path: p, headers: [], timeoutMs: 5000 });

/** Starts fixtures/instance.js; resolves { port, child, stop() }. */
function startInstance(args = []) {
  const child = spawn(process.execPath, [INSTANCE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUNNER_TOKEN: TOKEN },
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        const { port } = JSON.parse(line);
        resolve({
          port,
          child,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', done);
              child.kill('SIGKILL');
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`instance exited (${code}) before listening: ${err}`)));
  });
}

describe('health probes', () => {
  let server;
  let port;
  before(async () => {
    server = newServer({ health: { path: '/healthz', readyPath: '/readyz' } });
    server.registerTask('h.ping', async () => 'pong');
    ({ port } = await server.listen());
  });
  after(async () => server && server.close());

  it('GET path: 200 {"ok":true,"status":"serving"}, JSON, cache-control: no-store', async () => {
    const res = await probe(port, '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { ok: true, status: 'serving' });
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-runner-request-id'], undefined, 'not a tunnel request');
  });

  it('GET readyPath: 200 {"ok":true,"status":"ready"}', async () => {
    const res = await probe(port, '/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { ok: true, status: 'ready' });
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('HEAD: the same status and length, no body', async () => {
    for (const p of ['/healthz', '/readyz']) {
      const res = await probe(port, p, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.body.length, 0);
      assert.ok(Number(res.headers['content-length']) > 0);
    }
  });

  it('a query string is ignored; other paths and methods are not probes', async () => {
    assert.equal((await probe(port, '/healthz?verbose=1')).status, 200);
    assert.equal((await probe(port, '/healthz/')).status, 404);
    assert.equal((await probe(port, '/livez')).status, 404);
    const post = await probe(port, '/healthz', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal(post.json().error.code, 'METHOD_NOT_ALLOWED');
  });

  it('the tunnel is served as before', async () => {
    const res = await rawRequest({ port }, taskReq('h.ping', ''));
    assert.deepEqual(res.json(), { ok: true, result: 'pong' });
  });

  it('without the option there is no probe (404, as any path outside the base)', async () => {
    const plain = newServer();
    const { port: p } = await plain.listen();
    try {
      assert.equal((await probe(p, '/healthz')).status, 404);
    } finally {
      await plain.close();
    }
  });
});

describe('readiness follows the JS thread (server in a child process)', () => {
  let inst;
  before(async () => {
    inst = await startInstance(['--ready-timeout', '300']);
  });
  after(async () => inst && inst.stop());

  /** Probes every 50 ms until `want` or the time is up; returns the last answer. */
  async function probeUntil(p, want, ms) {
    const t = Date.now();
    let res;
    do {
      res = await probe(inst.port, p);
      if (res.status === want) return res;
      await sleep(50);
    } while (Date.now() - t < ms);
    return res;
  }

  it('a handler busy-looping on the JS thread: readiness 503 "stalled", liveness stays 200 (no JS needed)', async () => {
    assert.equal((await probe(inst.port, '/readyz')).status, 200);
    const blocked = rawRequest({ port: inst.port }, taskReq('prod.block', JSON.stringify({ input: { ms: 1500 } })));
    await sleep(600);
    const t0 = Date.now();
    const ready = await probe(inst.port, '/readyz');
    const live = await probe(inst.port, '/healthz');
    assert.ok(Date.now() - t0 < 300, 'answered while the JS thread is still blocked');
    assert.equal(ready.status, 503);
    const body = ready.json();
    assert.equal(body.ok, false);
    assert.equal(body.status, 'stalled');
    assert.ok(body.stalledMs >= 300, `stalledMs ${body.stalledMs}`);
    assert.equal(live.status, 200);
    assert.equal((await blocked).status, 200);
    const back = await probeUntil('/readyz', 200, 2000);
    assert.equal(back.status, 200, 'ready again once the JS thread runs');
  });

  it('an idle server whose JS thread is blocked (no calls queued) turns 503 within one more probe', async () => {
    const res = await rawRequest(
      { port: inst.port },
      taskReq('prod.blockSoon', JSON.stringify({ input: { ms: 1500 } })),
    );
    assert.equal(res.status, 200);
    await sleep(100);
    const stalled = await probeUntil('/readyz', 503, 1200);
    assert.equal(stalled.status, 503, 'a probe wakes JS; the next sees it has not run');
    assert.equal(stalled.json().status, 'stalled');
    const back = await probeUntil('/readyz', 200, 3000);
    assert.equal(back.status, 200);
  });
});

describe('health option validation: TypeError naming the field', () => {
  const bad = [
    ['health', { health: '/healthz' }],
    ['health', { health: {} }],
    ['health.path', { health: { path: 'healthz' } }],
    ['health.path', { health: { path: '/healthz?x=1' } }],
    ['health.path', { health: { path: '/a/../b' } }],
    ['health.path', { health: { path: '/a//b' } }],
    ['health.path', { health: { path: 42 } }],
    ['health.path', { health: { path: '/__runner/health' } }],
    ['health.path', { basePath: '/api', health: { path: '/api' } }],
    ['health.path', { basePath: '/', health: { path: '/healthz' } }],
    ['health.readyPath', { health: { readyPath: '/__runner' } }],
    ['health.readyPath', { health: { path: '/h', readyPath: '/h' } }],
    ['health.readyTimeoutMs', { health: { path: '/h', readyTimeoutMs: 0 } }],
    ['health.readyTimeoutMs', { health: { path: '/h', readyTimeoutMs: 1.5 } }],
    ['health.readyTimeoutMs', { health: { path: '/h', readyTimeoutMs: '5s' } }],
  ];
  for (const [field, opts] of bad) {
    it(`${JSON.stringify(opts)} throws a TypeError naming "${field}"`, () => {
      assert.throws(
        () => newServer(opts),
        (err) => err instanceof TypeError && err.message.includes(`"${field}"`),
      );
    });
  }

  it('good values are accepted', () => {
    newServer({ health: { path: '/healthz' } });
    newServer({ health: { readyPath: '/ready', readyTimeoutMs: 100 } });
    newServer({ basePath: '/api', health: { path: '/api-health', readyPath: '/_/ready' } });
    newServer({ health: null });
  });
});
