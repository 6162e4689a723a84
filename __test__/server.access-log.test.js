'use strict';

// The access log: `onAccess(records)` gets finished requests in batches, collected
// on the HTTP threads and delivered at most every 50 ms, never one call per request.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { TunnelServer } = require('..');
const { TOKEN } = require('./helpers');

const AUTH = { 'x-runner-token': TOKEN, 'content-type': 'application/json' };

async function start(options) {
  const server = new TunnelServer({ port: 0, auth: { token: TOKEN }, ...options });
  server.registerTask('app.add', async ({ a, b }) => ({ sum: a + b }));
  const address = await server.listen();
  return { server, ...address };
}

/** Collects records; `wait(n)` resolves once n have come. */
function collector() {
  const records = [];
  const calls = [];
  return {
    records,
    calls,
    onAccess: (batch) => {
      calls.push(batch.length);
      records.push(...batch);
    },
    async wait(n) {
      for (let i = 0; i < 300 && records.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(records.length >= n, `expected ${n} records, got ${JSON.stringify(records)}`);
      return records;
    },
  };
}

const silent = { error() {}, warn() {} };

test('records of task calls, 404s and refused requests have the request facts', async () => {
  const log = collector();
  const { server, url, port } = await start({ onAccess: log.onAccess, logger: silent });
  try {
    const ok = await fetch(`${url}/__runner/task/app.add?x=secret`, {
      method: 'POST',
      headers: { ...AUTH, 'x-runner-request-id': 'req-1' },
      body: '{"input":{"a":1,"b":2}}',
    });
    assert.equal(ok.status, 200);
    const okBody = await ok.text();
    await log.wait(1);
    const missing = await fetch(`${url}/__runner/task/app.nope`, { method: 'POST', headers: AUTH, body: '{}' });
    assert.equal(missing.status, 404);
    await log.wait(2);
    const refused = await fetch(`${url}/__runner/task/app.add`, {
      method: 'POST',
      headers: { 'x-runner-request-id': 'req-3' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    await log.wait(3);
    assert.equal((await fetch(`${url}/outside`)).status, 404);
    await log.wait(4);
    // A head the parser refuses: no method, path or request id.
    await new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end('GET / HTTP/1.1\r\nbad\r\n\r\n'));
      socket.on('data', () => {});
      socket.on('close', resolve);
    });
    const [first, second, third, fourth, fifth] = await log.wait(5);

    assert.deepEqual(Object.keys(first), [
      'method',
      'path',
      'status',
      'durationMs',
      'bytesIn',
      'bytesOut',
      'requestId',
    ]);
    assert.equal(first.method, 'POST');
    assert.equal(first.path, '/__runner/task/app.add', 'the pathname: the query is left out');
    assert.equal(first.status, 200);
    assert.equal(first.requestId, 'req-1');
    assert.ok(typeof first.durationMs === 'number' && first.durationMs >= 0 && first.durationMs < 5000);
    assert.ok(first.bytesIn > 23, 'the head and the body');
    assert.ok(first.bytesOut > Buffer.byteLength(okBody), 'the head and the body');

    assert.equal(second.status, 404);
    assert.equal(second.path, '/__runner/task/app.nope');
    assert.match(second.requestId, /^[0-9a-f-]{36}$/, 'a fresh request id');

    assert.equal(third.status, 401);
    assert.equal(third.requestId, 'req-3');

    assert.equal(fourth.status, 404);
    assert.equal(fourth.path, '/outside');
    assert.equal(fourth.requestId, null, 'outside the base path there is no request id');

    assert.equal(fifth.status, 400);
    assert.equal(fifth.method, null);
    assert.equal(fifth.path, null);
    assert.equal(fifth.requestId, null);
  } finally {
    await server.close();
  }
});

test('many requests come in a few batches, not one call per request', async () => {
  const log = collector();
  const { server, url } = await start({ onAccess: log.onAccess });
  try {
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        fetch(`${url}/__runner/task/app.add`, {
          method: 'POST',
          headers: AUTH,
          body: JSON.stringify({ input: { a: i, b: 1 } }),
        }),
      ),
    );
    assert.ok(answers.every((r) => r.status === 200));
    await log.wait(50);
    assert.ok(log.calls.length < 50, `onAccess calls: ${log.calls}`);
    assert.equal(server.stats().accessLogDropped, 0);
  } finally {
    await server.close();
  }
});

test('an onAccess that throws (or rejects) is logged and the server serves on', async () => {
  const errors = [];
  let calls = 0;
  const { server, url } = await start({
    onAccess: (records) => {
      calls += 1;
      if (calls === 1) throw new Error('access sink broke');
      if (calls === 2) return Promise.reject(new Error('access sink rejected'));
      return undefined;
    },
    logger: { error: (message) => errors.push(message), warn() {} },
  });
  try {
    const add = () =>
      fetch(`${url}/__runner/task/app.add`, { method: 'POST', headers: AUTH, body: '{"input":{"a":1,"b":1}}' });
    for (let round = 1; round <= 3; round++) {
      const res = await add();
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true, result: { sum: 2 } });
      for (let i = 0; i < 300 && calls < round; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(calls, round, 'a delivery per round');
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(errors, [
      '[runner-native] onAccess failed: access sink broke',
      '[runner-native] onAccess failed: access sink rejected',
    ]);
  } finally {
    await server.close();
  }
});

test('requests answered while the server closes are delivered too', async () => {
  const log = collector();
  const { server, url } = await start({ onAccess: log.onAccess });
  const res = await fetch(`${url}/__runner/task/app.add`, {
    method: 'POST',
    headers: AUTH,
    body: '{"input":{"a":1,"b":1}}',
  });
  assert.equal(res.status, 200);
  await server.close();
  const [record] = await log.wait(1);
  assert.equal(record.status, 200);
});
