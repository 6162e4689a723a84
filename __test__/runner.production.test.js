'use strict';
// nativeExposure in production: Runner's dispose drains like close() (in-flight
// calls answered with `connection: close`, new connections refused, bounded by
// `http.closeGraceMs`), and `http.health` serves the probes.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { r, run, globals, useExposureContext } = require('@bluelibs/runner');
const { nativeExposure } = require('../runner');
const { rawRequest, taskReq, deferred, sleep, TOKEN } = require('./helpers');

const RUN_OPTS = { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false };

const connectOutcome = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code));
  });

/** An app with `pr.wait` (waits for `gate`, reports its exposure signal) and `pr.ping`. */
async function startApp(http) {
  const gate = deferred();
  const started = deferred();
  const signals = [];
  const wait = r
    .task('pr.wait')
    .run(async () => {
      signals.push(useExposureContext().signal);
      started.resolve();
      await gate.promise;
      return 'waited';
    })
    .build();
  const ping = r
    .task('pr.ping')
    .run(async () => 'pong')
    .build();
  const tunnel = r
    .resource('pr.tunnel')
    .tags([globals.tags.tunnel])
    .init(async () => ({ mode: 'server', tasks: [wait.id, ping.id] }))
    .build();
  const app = r
    .resource('pr.app')
    .register([
      wait,
      ping,
      tunnel,
      nativeExposure.with({ http: { listen: { port: 0, host: '127.0.0.1' }, auth: { token: TOKEN }, ...http } }),
    ])
    .build();
  const runtime = await run(app, RUN_OPTS);
  const { port } = runtime.getResourceValue(nativeExposure);
  return { runtime, port, started: started.promise, release: () => gate.resolve(), signals };
}

describe('nativeExposure: dispose drains', () => {
  it('an in-flight call is answered (connection: close) before dispose resolves; new connections are refused', async () => {
    const app = await startApp({});
    let disposed = false;
    try {
      const call = rawRequest({ port: app.port }, taskReq('pr.wait', ''));
      await app.started;
      const disposing = app.runtime.dispose().then(() => (disposed = true));
      let outcome;
      for (let i = 0; i < 50 && outcome !== 'ECONNREFUSED'; i++) {
        outcome = await connectOutcome(app.port);
        if (outcome !== 'ECONNREFUSED') await sleep(10);
      }
      assert.equal(outcome, 'ECONNREFUSED');
      assert.equal(disposed, false, 'dispose waits for the call');
      app.release();
      const res = await call;
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { ok: true, result: 'waited' });
      assert.equal(res.headers.connection, 'close');
      await disposing;
    } finally {
      app.release();
      if (!disposed) await app.runtime.dispose().catch(() => {});
    }
  });

  it('http.closeGraceMs bounds dispose: what is left is aborted (useExposureContext().signal fires)', async () => {
    const app = await startApp({ closeGraceMs: 200 });
    try {
      const call = rawRequest({ port: app.port }, taskReq('pr.wait', '')).catch((e) => e);
      await app.started;
      const t0 = Date.now();
      await app.runtime.dispose();
      const took = Date.now() - t0;
      assert.ok(took >= 180 && took < 2000, `dispose took the grace and little more (${took} ms)`);
      assert.equal(app.signals[0].aborted, true);
      assert.ok((await call) instanceof Error, 'no answer after the grace');
    } finally {
      app.release();
    }
  });
});

describe('nativeExposure: http.health', () => {
  it('serves the probes outside the base path, the tunnel as before', async () => {
    const app = await startApp({ health: { path: '/healthz', readyPath: '/readyz' } });
    try {
      const live = await rawRequest({ port: app.port }, { method: 'GET', path: '/healthz', headers: [] });
      assert.deepEqual([live.status, live.json()], [200, { ok: true, status: 'serving' }]);
      assert.equal(live.headers['cache-control'], 'no-store');
      const ready = await rawRequest({ port: app.port }, { method: 'GET', path: '/readyz', headers: [] });
      assert.deepEqual([ready.status, ready.json()], [200, { ok: true, status: 'ready' }]);
      assert.equal((await rawRequest({ port: app.port }, taskReq('pr.ping', ''))).json().result, 'pong');
    } finally {
      app.release();
      await app.runtime.dispose();
    }
  });

  it('a bad http.health fails run() with a TypeError naming the field', async () => {
    for (const [health, field] of [
      [{ path: 'healthz' }, 'health.path'],
      [{ path: '/__runner/h' }, 'health.path'],
      [{ path: '/h', readyTimeoutMs: -1 }, 'health.readyTimeoutMs'],
    ]) {
      const app = r
        .resource('pr.bad')
        .register([nativeExposure.with({ http: { listen: { port: 0 }, auth: { token: TOKEN }, health } })])
        .build();
      await assert.rejects(
        run(app, RUN_OPTS),
        (err) => err instanceof TypeError && err.message.includes(`"${field}"`),
        JSON.stringify(health),
      );
    }
  });

  it('a bad http.closeGraceMs fails run() with a TypeError naming the field', async () => {
    const app = r
      .resource('pr.badGrace')
      .register([nativeExposure.with({ http: { listen: { port: 0 }, auth: { token: TOKEN }, closeGraceMs: -5 } })])
      .build();
    await assert.rejects(
      run(app, RUN_OPTS),
      (err) => err instanceof TypeError && err.message.includes('"closeGraceMs"'),
    );
  });
});
