'use strict';

// The metrics: the Prometheus endpoint (on the server's port or its own, answered
// without the JS thread), what the figures count over real HTTP, server.stats(),
// and the options' TypeErrors. The exposition is checked with Prometheus's own
// `promtool check metrics` (Debian's `prometheus` package; .ci/run installs it).
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { spawnSync } = require('node:child_process');
const { TunnelServer } = require('..');
const { TOKEN, deferred } = require('./helpers');

const hasPromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
const AUTH = { 'x-runner-token': TOKEN, 'content-type': 'application/json' };

async function start(options = {}, tasks = {}) {
  const server = new TunnelServer({ port: 0, auth: { token: TOKEN }, logger: { error() {}, warn() {} }, ...options });
  server.registerTask('app.add', async ({ a, b }) => ({ sum: a + b }));
  for (const [id, fn] of Object.entries(tasks)) server.registerTask(id, fn);
  const address = await server.listen();
  return { server, ...address };
}

const call = (url, id, input) =>
  fetch(`${url}/__runner/task/${id}`, { method: 'POST', headers: AUTH, body: JSON.stringify({ input }) });

/** `name{labels} value` lines of an exposition, as a map. */
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Polls `read()` until `ok(value)`, or fails with the last value. */
async function until(read, ok, what) {
  let value;
  for (let i = 0; i < 200; i++) {
    value = await read();
    if (ok(value)) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${what}: ${JSON.stringify(value)}`);
}

/** One request on a connection of its own (`connection: close`): every byte the server sent. */
function exchange(port, text) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(text));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

test('GET /metrics outside the base path answers Prometheus text that promtool accepts', async () => {
  const { server, url, metricsUrl } = await start({ metrics: { path: '/metrics' } });
  try {
    assert.equal(metricsUrl, `${url}/metrics`);
    for (let i = 0; i < 3; i++) assert.equal((await call(url, 'app.add', { a: i, b: 1 })).status, 200);
    assert.equal((await call(url, 'app.missing', {})).status, 404);
    assert.equal((await fetch(`${url}/elsewhere`)).status, 404);
    assert.equal((await fetch(`${url}/__runner/discovery`)).status, 401);

    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const s = samples(text);
    assert.equal(s.get('runner_native_requests_total{kind="task",status="200"}'), 3);
    assert.equal(s.get('runner_native_requests_total{kind="task",status="404"}'), 1);
    assert.equal(s.get('runner_native_requests_total{kind="other",status="404"}'), 1);
    assert.equal(s.get('runner_native_requests_total{kind="discovery",status="401"}'), 1);
    assert.equal(s.get('runner_native_request_duration_seconds_count{kind="task"}'), 4);
    assert.equal(s.get('runner_native_request_duration_seconds_bucket{kind="task",le="+Inf"}'), 4);
    assert.ok(s.get('runner_native_request_duration_seconds_sum{kind="task"}') > 0);
    assert.equal(s.get('runner_native_calls_in_flight'), 0);
    assert.equal(s.get('runner_native_js_calls_total'), 3);
    assert.ok(s.get('runner_native_js_batch_wait_seconds_count') >= 1);
    assert.ok(s.get('runner_native_received_bytes_total') > 0);
    assert.ok(s.get('runner_native_sent_bytes_total') > 0);
    assert.equal(s.get('runner_native_access_log_dropped_total'), 0);
    for (const name of new Set(text.match(/^# TYPE (\S+)/gm).map((l) => l.split(' ')[2]))) {
      assert.ok(name.startsWith('runner_native_'), name);
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'));
    }

    if (hasPromtool) {
      const checked = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(checked.status, 0, `promtool: ${checked.stdout}${checked.stderr}`);
      assert.equal(checked.stdout + checked.stderr, '', 'promtool has no lint findings');
    }
    // A scrape is a request like any other: counted as `other`.
    const again = samples(await (await fetch(metricsUrl)).text());
    assert.equal(again.get('runner_native_requests_total{kind="other",status="200"}'), 1);
    assert.equal((await fetch(metricsUrl, { method: 'POST' })).status, 405);
  } finally {
    await server.close();
  }
});

test(
  "promtool is installed (CI installs Debian's prometheus package)",
  { skip: process.env.CI ? false : 'not CI' },
  () => {
    assert.ok(hasPromtool, 'promtool missing: apt-get install prometheus');
  },
);

test('the scrape is answered while the JS thread is blocked', async () => {
  const { server, metricsUrl } = await start({ metrics: {} });
  try {
    // spawnSync blocks this thread (the server's JS thread) until the child is done.
    const child = spawnSync(
      process.execPath,
      ['-e', `fetch(${JSON.stringify(metricsUrl)}).then((r) => r.text()).then((t) => process.stdout.write(t))`],
      { encoding: 'utf8', timeout: 10000 },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /^runner_native_open_connections 1$/m);
  } finally {
    await server.close();
  }
});

test('calls queued for a blocked JS thread show in the queue depth, then as one batch that waited', async () => {
  const { server, url } = await start({ metrics: {} });
  try {
    const script = `
      const call = fetch(${JSON.stringify(`${url}/__runner/task/app.add`)}, {
        method: 'POST', headers: ${JSON.stringify(AUTH)}, body: '{"input":{"a":1,"b":2}}',
      }).catch(() => {});
      setTimeout(async () => {
        process.stdout.write(await (await fetch(${JSON.stringify(`${url}/metrics`)})).text());
        process.exit(0);
      }, 300);`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
    assert.equal(child.status, 0, child.stderr);
    const s = samples(child.stdout);
    assert.equal(s.get('runner_native_js_queue_depth'), 1);
    assert.equal(s.get('runner_native_calls_in_flight'), 1);
    const stats = await until(
      () => server.stats(),
      (v) => v.jsQueueDepth === 0 && v.callsInFlight === 0,
      'the call was taken and its client is gone',
    );
    assert.ok(stats.jsBatchWaitSeconds.sum >= 0.2, `the batch waited for JS: ${stats.jsBatchWaitSeconds.sum}`);
  } finally {
    await server.close();
  }
});

test('calls in flight and open connections move with a pending handler and open sockets', async () => {
  const gate = deferred();
  const entered = deferred();
  const { server, url, port } = await start(
    {},
    {
      'app.wait': async () => {
        entered.resolve();
        await gate.promise;
        return 'done';
      },
    },
  );
  try {
    assert.equal(server.stats().openConnections, 0);
    const sockets = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
          }),
      ),
    );
    await until(
      () => server.stats().openConnections,
      (n) => n === 3,
      'three connections open',
    );
    const pending = call(url, 'app.wait', null);
    await entered.promise;
    const during = server.stats();
    assert.equal(during.callsInFlight, 1);
    assert.equal(during.jsQueueDepth, 0, 'JS has taken it');
    assert.equal(during.openConnections, 4);
    gate.resolve();
    assert.equal((await pending).status, 200);
    await until(
      () => server.stats().callsInFlight,
      (n) => n === 0,
      'the call finished',
    );
    for (const s of sockets) s.destroy();
    await until(
      () => server.stats().openConnections,
      (n) => n <= 1,
      'the sockets closed',
    );
    assert.equal(server.stats().connections, 4);
  } finally {
    await server.close();
  }
  assert.equal(server.stats().openConnections, 0, 'after close');
});

test('bytes in and out are what went over the wire, and the histogram counts each request', async () => {
  const { server, port } = await start();
  try {
    const body = '{"input":{"a":1,"b":2}}';
    const request =
      `POST /__runner/task/app.add HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\n` +
      `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
    const before = server.stats();
    const answer = await exchange(port, request);
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 /);
    const after = await until(
      () => server.stats(),
      (s) => s.requests.task['200'] === 1,
      'counted',
    );
    assert.equal(after.receivedBytes - before.receivedBytes, Buffer.byteLength(request));
    assert.equal(after.sentBytes - before.sentBytes, answer.length);
    const h = after.requestDurationSeconds.task;
    assert.equal(h.count, 1);
    assert.equal(h.buckets.at(-1).le, Infinity);
    assert.equal(h.buckets.at(-1).count, 1);
    assert.ok(
      h.buckets.every((b, i) => i === 0 || b.count >= h.buckets[i - 1].count),
      'cumulative',
    );
    assert.ok(h.sum > 0 && h.sum < 5);

    // A head the parser refuses: counted as other, with its bytes, without a duration.
    const refused = await exchange(port, 'GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n');
    assert.match(refused.toString('latin1'), /^HTTP\/1\.1 400 /);
    const s = await until(
      () => server.stats(),
      (v) => v.requests.other['400'] === 1,
      'refusal counted',
    );
    assert.equal(s.requestDurationSeconds.other.count, 0);
    assert.equal(s.sentBytes - after.sentBytes, refused.length);
  } finally {
    await server.close();
  }
});

test('metrics on a port of their own: only the metrics path is served there', async () => {
  const { server, url, port, metricsUrl } = await start({ metrics: { path: '/prom', port: 0 } });
  try {
    const m = new URL(metricsUrl);
    assert.notEqual(Number(m.port), port);
    assert.equal(m.pathname, '/prom');
    assert.equal((await call(url, 'app.add', { a: 1, b: 1 })).status, 200);
    const text = await (await fetch(metricsUrl)).text();
    assert.equal(samples(text).get('runner_native_requests_total{kind="task",status="200"}'), 1);
    assert.equal((await fetch(`${m.origin}/__runner/discovery`)).status, 404);
    assert.equal((await fetch(`${url}/prom`)).status, 404, 'not on the main port');
    assert.equal(server.address().metricsUrl, metricsUrl);
  } finally {
    await server.close();
  }
  // The port is free again.
  await new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject);
    probe.listen(Number(new URL(metricsUrl).port), '127.0.0.1', () => probe.close(resolve));
  });
});

test('stats() without metrics: the same figures, counted all the same', async () => {
  const { server, url } = await start();
  try {
    assert.equal(server.address().metricsUrl, undefined);
    assert.equal((await call(url, 'app.add', { a: 1, b: 2 })).status, 200);
    const s = server.stats();
    assert.deepEqual(Object.keys(s), [
      'requests',
      'requestDurationSeconds',
      'callsInFlight',
      'openConnections',
      'connections',
      'jsQueueDepth',
      'jsCalls',
      'jsBatchWaitSeconds',
      'receivedBytes',
      'sentBytes',
      'accessLogDropped',
    ]);
    assert.deepEqual(s.requests, { task: { 200: 1 }, event: {}, discovery: {}, other: {} });
    assert.deepEqual(Object.keys(s.requestDurationSeconds), ['task', 'event', 'discovery', 'other']);
    assert.equal(s.jsCalls, 1);
    assert.match(server.metricsText(), /^runner_native_requests_total\{kind="task",status="200"\} 1$/m);
  } finally {
    await server.close();
  }
});

test('bad metrics and onAccess options throw a TypeError naming the field', () => {
  const cases = [
    [{ metrics: true }, 'metrics'],
    [{ metrics: '/metrics' }, 'metrics'],
    [{ metrics: { path: 'metrics' } }, 'metrics.path'],
    [{ metrics: { path: '/m?x' } }, 'metrics.path'],
    [{ metrics: { path: 7 } }, 'metrics.path'],
    [{ metrics: { path: '/__runner/metrics' } }, 'metrics.path'],
    [{ metrics: { path: '/__runner' } }, 'metrics.path'],
    [{ basePath: '/', metrics: { path: '/metrics' } }, 'metrics.path'],
    [{ metrics: { port: -1 } }, 'metrics.port'],
    [{ metrics: { port: 1.5 } }, 'metrics.port'],
    [{ metrics: { port: '9100' } }, 'metrics.port'],
    [{ port: 9100, metrics: { port: 9100 } }, 'metrics.port'],
    [{ onAccess: 'log' }, 'onAccess'],
    [{ onAccess: {} }, 'onAccess'],
  ];
  for (const [options, field] of cases) {
    assert.throws(
      () => new TunnelServer(options),
      (e) => e instanceof TypeError && e.message.includes(`"${field}"`),
      JSON.stringify(options),
    );
  }
  // Under the base path is fine on a port of its own, as are the defaults.
  new TunnelServer({ metrics: { path: '/__runner/metrics', port: 0 } });
  new TunnelServer({ basePath: '/api', metrics: { path: '/__runner/metrics' } });
  new TunnelServer({ metrics: null, onAccess: null });
});

test('with tls: the metrics path answers over https on the server port, over http on a port of its own', async () => {
  const { serverTls, httpsRequest } = require('./helpers/tls');
  const shared = await start({ tls: serverTls(), metrics: {} });
  const apart = await start({ tls: serverTls(), metrics: { port: 0 } });
  try {
    assert.equal(shared.metricsUrl, `${shared.url}/metrics`);
    assert.ok(shared.metricsUrl.startsWith('https://'));
    const add = await httpsRequest(`${shared.url}/__runner/task/app.add`, {
      headers: AUTH,
      body: '{"input":{"a":1,"b":2}}',
    });
    assert.equal(add.status, 200);
    const scraped = await httpsRequest(shared.metricsUrl, { method: 'GET' });
    assert.equal(scraped.status, 200);
    assert.equal(samples(scraped.body.toString()).get('runner_native_requests_total{kind="task",status="200"}'), 1);
    assert.ok(apart.metricsUrl.startsWith('http://'));
    assert.equal((await fetch(apart.metricsUrl)).status, 200);
  } finally {
    await shared.server.close();
    await apart.server.close();
  }
});

test('a call shed past maxInFlight is counted as its kind, with its 503', async () => {
  const gate = deferred();
  const entered = deferred();
  const { server, url } = await start(
    { maxInFlight: 1 },
    {
      'app.wait': async () => {
        entered.resolve();
        await gate.promise;
        return 'done';
      },
    },
  );
  try {
    const pending = call(url, 'app.wait', null);
    await entered.promise;
    assert.equal((await call(url, 'app.add', { a: 1, b: 2 })).status, 503);
    gate.resolve();
    assert.equal((await pending).status, 200);
    const s = await until(
      () => server.stats(),
      (v) => v.requests.task['200'] === 1,
      'both counted',
    );
    assert.equal(s.requests.task['503'], 1);
    assert.deepEqual(s.requests.other, {});
  } finally {
    await server.close();
  }
});
