'use strict';
// nativeExposure's `http.metrics` and `http.onAccess`, and the value's stats().
const test = require('node:test');
const assert = require('node:assert/strict');
const { nativeExposure } = require('../runner');
const { startRnApp, TOKEN } = require('./helpers/rn-app');

test('http.metrics serves the figures, value.stats() gives them, http.onAccess gets the records', async () => {
  const records = [];
  const nat = await startRnApp(nativeExposure, {
    auth: { token: TOKEN },
    metrics: { path: '/metrics' },
    onAccess: (batch) => records.push(...batch),
  });
  try {
    assert.equal(nat.value.metricsUrl, `${nat.url}/metrics`);
    const res = await fetch(`${nat.value.baseUrl}/task/rn.add`, {
      method: 'POST',
      headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
      body: '{"input":{"a":1,"b":2}}',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, result: 3 });
    assert.deepEqual(nat.value.stats().requests.task, { 200: 1 });
    const text = await (await fetch(nat.value.metricsUrl)).text();
    assert.match(text, /^runner_native_requests_total\{kind="task",status="200"\} 1$/m);
    for (let i = 0; i < 300 && records.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(records[0].path, '/__runner/task/rn.add');
    assert.equal(records[0].status, 200);
  } finally {
    await nat.close();
  }
});

test('without http.listen there is no metrics url, and stats() still counts nothing', async () => {
  const { run, r } = require('@bluelibs/runner');
  const app = r
    .resource('rn.metrics.app')
    .register([nativeExposure.with({ http: { metrics: { path: '/metrics' } } })])
    .build();
  const runtime = await run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });
  try {
    const value = runtime.getResourceValue(nativeExposure);
    assert.equal(value.metricsUrl, null);
    assert.equal(value.stats().openConnections, 0);
  } finally {
    await runtime.dispose();
  }
});

test('bad http.metrics and http.onAccess throw a TypeError naming the field', async () => {
  const { run, r } = require('@bluelibs/runner');
  for (const [http, field] of [
    [{ metrics: { path: '/__runner/metrics' } }, 'metrics.path'],
    [{ onAccess: 1 }, 'onAccess'],
  ]) {
    const app = r
      .resource('rn.metrics.bad')
      .register([nativeExposure.with({ http })])
      .build();
    await assert.rejects(
      run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false }),
      (e) => e instanceof TypeError && e.message.includes(`"${field}"`),
    );
  }
});
