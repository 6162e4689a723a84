'use strict';
// nativeExposure's production options: `http.maxInFlight`, `http.retryAfterSeconds`,
// `http.maxConnections` and `http.compression` reach the native server, and bad values
// are TypeErrors naming the field.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { r, run, globals, createHttpClient, Serializer } = require('@bluelibs/runner');
const { nativeExposure } = require('../runner');
const { deferred, sleep, TOKEN } = require('./helpers');

async function startApp(http) {
  const state = { calls: 0, gate: deferred() };
  const wait = r
    .task('prod.wait')
    .run(async () => {
      state.calls += 1;
      await state.gate.promise;
      return 'done';
    })
    .build();
  const items = r
    .task('prod.items')
    .run(async (n) => Array.from({ length: n }, (_, i) => ({ id: i, name: `item-${i}` })))
    .build();
  const tunnel = r
    .resource('prod.tunnel')
    .tags([globals.tags.tunnel])
    .init(async () => ({ mode: 'server', transport: 'http', tasks: [wait.id, items.id], events: [] }))
    .build();
  const app = r
    .resource('prod.app')
    .register([
      wait,
      items,
      tunnel,
      nativeExposure.with({
        http: { auth: { token: TOKEN }, listen: { port: 0, host: '127.0.0.1' }, ...http },
      }),
    ])
    .build();
  const runtime = await run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });
  const value = runtime.getResourceValue(nativeExposure);
  const client = createHttpClient({ baseUrl: value.baseUrl, auth: { token: TOKEN }, serializer: new Serializer() });
  return { runtime, value, state, client, close: () => runtime.dispose() };
}

async function until(check, what) {
  for (let i = 0; i < 1000 && !check(); i++) await sleep(5);
  assert.ok(check(), what);
}

describe('nativeExposure production options', () => {
  it('http.maxInFlight and http.retryAfterSeconds: the call past the limit is a 503 Runner never runs', async () => {
    const app = await startApp({ maxInFlight: 1, retryAfterSeconds: 3 });
    try {
      const first = app.client.task('prod.wait');
      await until(() => app.state.calls === 1, 'the first call runs');
      const res = await fetch(`${app.value.baseUrl}/task/prod.wait`, {
        method: 'POST',
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '3');
      assert.deepEqual(await res.json(), { ok: false, error: { message: 'Server busy', code: 'OVERLOADED' } });
      await assert.rejects(app.client.task('prod.wait'), (e) => e.code === 'OVERLOADED');
      assert.equal(app.state.calls, 1);
      app.state.gate.resolve();
      assert.equal(await first, 'done');
      assert.equal(await app.client.task('prod.wait'), 'done');
    } finally {
      app.state.gate.resolve();
      await app.close();
    }
  });

  it('http.maxConnections: a connection past it is closed at once', async () => {
    const app = await startApp({ maxConnections: 1 });
    const held = net.connect(app.value.port, '127.0.0.1');
    try {
      await new Promise((resolve) => held.once('connect', resolve));
      // Let the server accept the first one before the second arrives.
      await sleep(50);
      const refused = net.connect(app.value.port, '127.0.0.1');
      refused.on('error', () => {});
      const outcome = await new Promise((resolve) => {
        refused.once('data', () => resolve('data'));
        refused.once('close', () => resolve('closed'));
      });
      assert.equal(outcome, 'closed');
    } finally {
      held.destroy();
      await app.close();
    }
  });

  it("http.compression: Runner's answers are compressed and decode to the same result", async () => {
    const app = await startApp({ compression: { threshold: 256 } });
    try {
      const res = await fetch(`${app.value.baseUrl}/task/prod.items`, {
        method: 'POST',
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json', 'accept-encoding': 'br' },
        body: '{"input":300}',
      });
      assert.equal(res.headers.get('content-encoding'), 'br');
      assert.equal((await res.json()).result.length, 300);
      const result = await app.client.task('prod.items', 300);
      assert.equal(result.length, 300);
      assert.deepEqual(result[299], { id: 299, name: 'item-299' });
    } finally {
      await app.close();
    }
  });

  for (const [field, http] of [
    ['maxInFlight', { maxInFlight: 0 }],
    ['maxConnections', { maxConnections: 'many' }],
    ['retryAfterSeconds', { retryAfterSeconds: -5 }],
    ['compression', { compression: 'br' }],
    ['compression.gzipLevel', { compression: { gzipLevel: 11 } }],
  ]) {
    it(`a bad http.${field} is a TypeError naming it`, async () => {
      await assert.rejects(startApp(http), (e) => e instanceof TypeError && e.message.includes(`"${field}"`));
    });
  }
});
