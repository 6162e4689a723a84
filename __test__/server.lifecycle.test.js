'use strict';
// Behaviour of the native TunnelServer alone: listen/close, options validation, registration.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { runToExit } = require('./helpers/scripts');
const { loadNative, silentLogger, request, rawRequest, taskReq, eventReq, discoveryReq, TOKEN } = require('./helpers');

const AUTH = { token: TOKEN };
const quiet = () => ({ logger: silentLogger() });
const newServer = (opts = {}) => {
  const { TunnelServer } = loadNative();
  return new TunnelServer({ port: 0, host: '127.0.0.1', auth: AUTH, ...quiet(), ...opts });
};
const post = (url, id, body, kind = 'task') =>
  request(`${url}/__runner/${kind}/${encodeURIComponent(id)}`, {
    method: 'POST',
    headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
    body,
  });

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms}ms`)), ms);
    }),
  ]);
}

describe('listen and close', () => {
  it('listen on port 0 resolves with host, a real port and a url', async () => {
    const server = newServer();
    server.registerTask('life.ping', async () => 'pong');
    try {
      const addr = await server.listen();
      assert.equal(addr.host, '127.0.0.1');
      assert.equal(typeof addr.port, 'number');
      assert.ok(Number.isInteger(addr.port) && addr.port > 0 && addr.port < 65536, `port ${addr.port}`);
      assert.equal(typeof addr.url, 'string');
      assert.ok(addr.url.startsWith(`http://127.0.0.1:${addr.port}`), `url ${addr.url}`);
      const a2 = server.address();
      assert.equal(a2.port, addr.port);
      assert.equal(a2.host, '127.0.0.1');
      const res = await post(`http://127.0.0.1:${addr.port}`, 'life.ping', '');
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { ok: true, result: 'pong' });
    } finally {
      await server.close();
    }
  });

  it('listen on an explicit free port uses that port', async () => {
    const probe = net.createServer();
    await new Promise((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address();
    await new Promise((r) => probe.close(r));
    const server = newServer({ port });
    try {
      const addr = await server.listen();
      assert.equal(addr.port, port);
    } finally {
      await server.close();
    }
  });

  it('listen on a port in use rejects with EADDRINUSE', async () => {
    const blocker = net.createServer();
    await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address();
    const server = newServer({ port });
    try {
      await assert.rejects(withTimeout(server.listen(), 10000, 'listen'), (err) => {
        assert.ok(err instanceof Error, 'rejects with an Error');
        // The README promises the OS reason as `code`.
        assert.equal(err.code, 'EADDRINUSE');
        return true;
      });
    } finally {
      await server.close().catch(() => {});
      await new Promise((r) => blocker.close(r));
    }
  });

  it('close frees the port and refuses new connections', async () => {
    const server = newServer();
    server.registerTask('life.ping', async () => 'pong');
    const { port } = await server.listen();
    await withTimeout(server.close(), 10000, 'close');
    await assert.rejects(rawRequest({ port }, taskReq('life.ping', '')), /ECONNREFUSED|closed/);
    const again = net.createServer();
    await new Promise((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    await new Promise((r) => again.close(r));
  });

  it('close resolves while a handler is still pending and a client is connected', async () => {
    const server = newServer();
    server.registerTask('life.hang', () => new Promise(() => {}));
    const { port } = await server.listen();
    const pending = rawRequest({ port }, { ...taskReq('life.hang', ''), timeoutMs: 20000 }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    await withTimeout(server.close(), 15000, 'close');
    const outcome = await withTimeout(pending, 20000, 'pending client');
    assert.ok(outcome instanceof Error || typeof outcome.status === 'number');
  });

  it('close resolves while an idle keep-alive connection is open', async () => {
    const http = require('node:http');
    const server = newServer();
    server.registerTask('life.ping', async () => 'pong');
    const { port } = await server.listen();
    const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60000 });
    try {
      const status = await new Promise((resolve, reject) => {
        const req = http.request(
          {
            port,
            host: '127.0.0.1',
            method: 'POST',
            path: '/__runner/task/life.ping',
            agent,
            headers: { 'x-runner-token': TOKEN },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
      await withTimeout(server.close(), 10000, 'close with an idle keep-alive connection');
    } finally {
      agent.destroy();
    }
  });

  it('two HTTP workers (the multi-threaded runtime): concurrent calls, streamed bodies, a clean close', async () => {
    const server = newServer({ workerThreads: 2 });
    server.registerTask('life.add', async ({ a, b }) => a + b);
    server.registerTask('life.count', async (input, ctx) => {
      let bytes = 0;
      for await (const chunk of ctx.req) bytes += chunk.length;
      return bytes;
    });
    const fs = require('node:fs');
    const httpThreads = () =>
      fs.readdirSync('/proc/self/task').filter((t) => {
        try {
          return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('runner-native-h');
        } catch {
          return false; // the thread ended meanwhile
        }
      }).length;
    const before = fs.existsSync('/proc/self/task') ? httpThreads() : null;
    const { url, port } = await server.listen();
    try {
      if (before !== null) {
        // A new thread takes its name once it runs.
        for (let i = 0; i < 100 && httpThreads() - before < 2; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(httpThreads() - before, 2, 'two HTTP worker threads run');
      }
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => post(url, 'life.add', JSON.stringify({ input: { a: i, b: 1 } }))),
      );
      answers.forEach((res, i) => {
        assert.equal(res.status, 200);
        assert.deepEqual(JSON.parse(res.text), { ok: true, result: i + 1 });
      });
      const body = Buffer.alloc(300 * 1024, 7);
      const raw = await rawRequest(
        { port },
        {
          method: 'POST',
          path: '/__runner/task/life.count',
          headers: [
            ['x-runner-token', TOKEN],
            ['content-type', 'application/octet-stream'],
          ],
          body,
        },
      );
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.json(), { ok: true, result: body.length });
    } finally {
      await withTimeout(server.close(), 10000, 'close');
    }
  });

  it('close twice resolves both times', async () => {
    const server = newServer();
    await server.listen();
    await server.close();
    await withTimeout(server.close(), 5000, 'second close');
  });

  it('a script that listens, serves one request and closes exits by itself', async () => {
    const pkg = path.resolve(__dirname, '..');
    const script = `
      const http = require('node:http');
      const { TunnelServer } = require(${JSON.stringify(pkg)});
      (async () => {
        const server = new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: ${JSON.stringify(TOKEN)} }, logger: { error() {}, warn() {} } });
        server.registerTask('one', async (input) => ({ twice: input * 2 }));
        const { port } = await server.listen();
        const body = await new Promise((resolve, reject) => {
          const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/__runner/task/one', headers: { 'x-runner-token': ${JSON.stringify(TOKEN)}, 'content-type': 'application/json' }, agent: false }, (res) => {
            let data = '';
            res.on('data', (c) => (data += c));
            res.on('end', () => resolve(data));
          });
          req.on('error', reject);
          req.end('{"input":21}');
        });
        process.stdout.write(body);
        await server.close();
      })().catch((e) => { console.error(e); process.exit(2); });
    `;
    const { out } = await runToExit(['-e', script]);
    assert.deepEqual(JSON.parse(out), { ok: true, result: { twice: 42 } });
  });

  it('a script that only constructs a server (never listens) exits by itself', async () => {
    const pkg = path.resolve(__dirname, '..');
    const script = `
      const { TunnelServer } = require(${JSON.stringify(pkg)});
      const server = new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: ${JSON.stringify(TOKEN)} } });
      server.registerTask('x', async () => 1);
    `;
    await runToExit(['-e', script]);
  });
});

describe('registration', () => {
  let server;
  let url;
  after(async () => server && server.close());

  it('getTaskIds / getEventIds list what is registered', async () => {
    server = newServer();
    server.registerTask('reg.a', async () => 'a');
    server.registerTask('reg.b/slash', async () => 'b');
    server.registerEvent('reg.ev', async () => undefined);
    assert.deepEqual([...server.getTaskIds()].sort(), ['reg.a', 'reg.b/slash']);
    assert.deepEqual([...server.getEventIds()], ['reg.ev']);
    const addr = await server.listen();
    url = `http://127.0.0.1:${addr.port}`;
  });

  it('unregisterTask takes effect while listening: 404 afterwards, discovery updated', async () => {
    assert.equal((await post(url, 'reg.a', '')).status, 200);
    server.unregisterTask('reg.a');
    const res = await post(url, 'reg.a', '');
    assert.equal(res.status, 404);
    assert.deepEqual(res.json(), { ok: false, error: { message: 'Task reg.a not found', code: 'NOT_FOUND' } });
    assert.deepEqual([...server.getTaskIds()], ['reg.b/slash']);
    const disc = await rawRequest(url, discoveryReq());
    assert.deepEqual(disc.json().result.allowList.tasks, ['reg.b/slash']);
  });

  it('registerTask while listening takes effect immediately', async () => {
    server.registerTask('reg.late', async (input) => ({ late: input }));
    const res = await post(url, 'reg.late', '{"input":1}');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { ok: true, result: { late: 1 } });
  });

  it('unregisterEvent takes effect while listening', async () => {
    assert.equal((await post(url, 'reg.ev', '{"payload":1}', 'event')).status, 200);
    server.unregisterEvent('reg.ev');
    const res = await post(url, 'reg.ev', '{"payload":1}', 'event');
    assert.equal(res.status, 404);
    assert.deepEqual(res.json(), { ok: false, error: { message: 'Event reg.ev not found', code: 'NOT_FOUND' } });
    assert.deepEqual([...server.getEventIds()], []);
  });

  it('a synchronous handler that throws -> 500 Internal Error, server keeps serving', async () => {
    server.registerTask('reg.syncThrow', () => {
      throw new Error('sync boom');
    });
    const res = await post(url, 'reg.syncThrow', '');
    assert.equal(res.status, 500);
    assert.deepEqual(res.json(), { ok: false, error: { message: 'Internal Error', code: 'INTERNAL_ERROR' } });
    assert.equal((await post(url, 'reg.b/slash', '')).status, 200);
  });

  it('a synchronous handler returning a plain value -> 200', async () => {
    server.registerTask('reg.sync', (input) => ({ sync: input }));
    assert.deepEqual((await post(url, 'reg.sync', '{"input":"v"}')).json(), { ok: true, result: { sync: 'v' } });
  });

  it('an AbortError thrown by the handler -> 499 REQUEST_ABORTED', async () => {
    server.registerTask('reg.abortError', async () => {
      const ac = new AbortController();
      ac.abort();
      throw ac.signal.reason; // DOMException AbortError
    });
    const res = await post(url, 'reg.abortError', '');
    assert.equal(res.status, 499);
    assert.deepEqual(res.json(), { ok: false, error: { message: 'Client Closed Request', code: 'REQUEST_ABORTED' } });
  });

  it('a typed-looking error (name = id, own data, httpCode) is answered with its httpCode', async () => {
    server.registerTask('reg.typedLike', async () => {
      const e = new Error('custom typed');
      e.name = 'my.errors.custom';
      e.id = 'my.errors.custom';
      e.data = { why: 'because' };
      e.httpCode = 409;
      throw e;
    });
    const res = await post(url, 'reg.typedLike', '');
    assert.equal(res.status, 409);
    const body = res.json();
    assert.equal(body.ok, false);
    assert.equal(body.error.message, 'custom typed');
    assert.equal(body.error.id, 'my.errors.custom');
    assert.deepEqual(body.error.data, { why: 'because' });
    assert.doesNotMatch(res.text, /stack|at /);
  });

  it('an event handler returning undefined keeps the payload with returnPayload', async () => {
    server.registerEvent('reg.keep', async () => undefined);
    const res = await rawRequest(url, eventReq('reg.keep', '{"payload":{"k":1},"returnPayload":true}'));
    assert.deepEqual(res.json(), { ok: true, result: { k: 1 } });
  });
});

describe('options and argument validation: TypeError naming the field', () => {
  const { TunnelServer } = (() => {
    try {
      return loadNative();
    } catch {
      return {};
    }
  })();
  const bad = [
    ['port', { port: 'eighty' }],
    ['port', { port: -1 }],
    ['port', { port: 70000 }],
    ['port', { port: 1.5 }],
    ['host', { host: 42 }],
    ['basePath', { basePath: 42 }],
    ['auth', { auth: 'secret' }],
    ['token', { auth: { token: 42 } }],
    ['token', { auth: { token: ['ok', 42] } }],
    ['header', { auth: { token: 't', header: 42 } }],
    ['allowAnonymous', { auth: { allowAnonymous: 'yes' } }],
    ['cors', { cors: 'https://x.example' }],
    ['origin', { cors: { origin: 42 } }],
    ['methods', { cors: { methods: 'POST' } }],
    ['allowedHeaders', { cors: { allowedHeaders: 'x-a' } }],
    ['exposedHeaders', { cors: { exposedHeaders: 'x-a' } }],
    ['maxAge', { cors: { maxAge: 'long' } }],
    ['corsOrigins', { corsOrigins: 'https://x.example' }],
    ['limits', { limits: 5 }],
    ['maxSize', { limits: { json: { maxSize: 'big' } } }],
    ['maxSize', { limits: { json: { maxSize: -1 } } }],
    ['disableDiscovery', { disableDiscovery: 'yes' }],
    ['serializer', { serializer: {} }],
    ['serializer', { serializer: { parse: JSON.parse } }],
    ['logger', { logger: 42 }],
  ];
  for (const [field, opts] of bad) {
    it(`bad ${field} (${JSON.stringify(opts, (k, v) => (typeof v === 'function' ? String(v) : v))}) throws a TypeError naming "${field}"`, () => {
      assert.equal(typeof TunnelServer, 'function', 'TunnelServer is exported');
      assert.throws(
        () => new TunnelServer({ auth: AUTH, ...opts }),
        (err) => {
          assert.ok(
            err instanceof TypeError,
            `expected TypeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`,
          );
          assert.match(err.message, new RegExp(field, 'i'));
          return true;
        },
      );
    });
  }

  it('good options of every kind are accepted', () => {
    assert.equal(typeof TunnelServer, 'function', 'TunnelServer is exported');
    const s = new TunnelServer({
      port: 0,
      host: '127.0.0.1',
      basePath: 'api/',
      auth: { token: ['a', 'b'], header: 'X-Key', allowAnonymous: false },
      cors: {
        origin: /x/,
        methods: ['POST'],
        allowedHeaders: ['a'],
        exposedHeaders: ['b'],
        credentials: true,
        maxAge: 5,
        varyOrigin: false,
      },
      limits: { json: { maxSize: 10 } },
      disableDiscovery: true,
      serializer: { parse: JSON.parse, stringify: JSON.stringify },
      logger: { error() {}, warn() {} },
    });
    assert.ok(s);
    for (const origin of ['https://a', ['https://a'], (o) => o])
      assert.ok(new TunnelServer({ auth: AUTH, cors: { origin } }));
    assert.ok(new TunnelServer({ auth: AUTH, corsOrigins: ['https://app.example'] }));
  });

  const server = TunnelServer
    ? (() => {
        try {
          return new TunnelServer({ auth: AUTH });
        } catch {
          return null;
        }
      })()
    : null;
  const notFunctions = [undefined, null, 42, 'fn', {}, []];
  for (const method of ['registerTask', 'registerEvent']) {
    for (const value of notFunctions) {
      it(`${method} with a ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value} handler throws a TypeError naming "handler"`, () => {
        assert.ok(server, 'server constructed');
        assert.throws(
          () => server[method]('some.id', value),
          (err) => {
            assert.ok(err instanceof TypeError, `expected TypeError, got ${err && err.message}`);
            assert.match(err.message, /handler/i);
            return true;
          },
        );
      });
    }
    for (const id of [undefined, 42, null, {}]) {
      it(`${method} with a ${id === null ? 'null' : typeof id} id throws a TypeError naming "id"`, () => {
        assert.ok(server, 'server constructed');
        assert.throws(
          () => server[method](id, async () => 1),
          (err) => {
            assert.ok(err instanceof TypeError, `expected TypeError, got ${err && err.message}`);
            assert.match(err.message, /\bid\b/i);
            return true;
          },
        );
      });
    }
  }
});
