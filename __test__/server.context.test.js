'use strict';
// Behaviour of the native TunnelServer alone: the handler context, client disconnects, concurrency.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  startNative,
  rawRequest,
  openAndSend,
  request,
  taskReq,
  eventReq,
  UUID_RE,
  TOKEN,
  sleep,
  deferred,
} = require('./helpers');

const AUTH = { token: TOKEN };

function within(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not happen within ${ms}ms`)), ms);
    }),
  ]);
}

describe('handler ctx', () => {
  let nat;
  const seen = [];
  before(async () => {
    nat = await startNative(
      {
        tasks: {
          'ctx.dump': async (input, ctx) => {
            seen.push(ctx);
            return {
              requestId: ctx.requestId,
              method: ctx.method,
              path: ctx.path,
              custom: ctx.headers['x-custom'],
              token: ctx.headers['x-runner-token'],
              context: ctx.context === undefined ? '<undefined>' : ctx.context,
              signalIsAbortSignal: ctx.signal instanceof AbortSignal,
              aborted: ctx.signal.aborted,
            };
          },
        },
        events: {
          'ctx.ev': async (payload, ctx) => ({
            requestId: ctx.requestId,
            method: ctx.method,
            path: ctx.path,
            custom: ctx.headers['x-custom'],
            signalIsAbortSignal: ctx.signal instanceof AbortSignal,
          }),
        },
      },
      { auth: AUTH },
    );
  });
  after(async () => nat && nat.close());

  it('task ctx has requestId (= echoed header), headers (lower-case keys), method, path, signal', async () => {
    const res = await rawRequest(
      nat,
      taskReq('ctx.dump', '{"input":1}', {
        headers: [
          ['X-Custom', 'hello'],
          ['x-runner-request-id', 'ctx-test-1'],
        ],
      }),
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-runner-request-id'], 'ctx-test-1');
    const r = res.json().result;
    assert.equal(r.requestId, 'ctx-test-1');
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/__runner/task/ctx.dump');
    assert.equal(r.custom, 'hello');
    assert.equal(r.token, TOKEN);
    assert.equal(r.signalIsAbortSignal, true);
    assert.equal(r.aborted, false);
  });

  it('generated request id is the one echoed and handed to ctx', async () => {
    const res = await rawRequest(nat, taskReq('ctx.dump', ''));
    assert.match(res.headers['x-runner-request-id'], UUID_RE);
    assert.equal(res.json().result.requestId, res.headers['x-runner-request-id']);
  });

  it('ctx.path is the path without the query string', async () => {
    const res = await rawRequest(nat, taskReq('ctx.dump?a=1', ''));
    assert.equal(res.json().result.path, '/__runner/task/ctx.dump');
  });

  it('ctx.context is the parsed x-runner-context header', async () => {
    const header = JSON.stringify({ 'app.ctx.user': JSON.stringify({ id: 7 }), 'app.ctx.locale': '"fr"' });
    const res = await rawRequest(nat, taskReq('ctx.dump', '', { headers: [['x-runner-context', header]] }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json().result.context, JSON.parse(header));
  });

  it('ctx.context is absent when no x-runner-context header is sent', async () => {
    const res = await rawRequest(nat, taskReq('ctx.dump', ''));
    const { context } = res.json().result;
    assert.ok(context === '<undefined>' || context === null, `context: ${JSON.stringify(context)}`);
  });

  it('an unparsable x-runner-context header does not fail the request', async () => {
    const res = await rawRequest(nat, taskReq('ctx.dump', '', { headers: [['x-runner-context', '{nope']] }));
    assert.equal(res.status, 200);
  });

  it('ctx.headers belong to their own request', async () => {
    const before = seen.length;
    await rawRequest(nat, taskReq('ctx.dump', '', { headers: [['X-Custom', 'one']] }));
    await rawRequest(nat, taskReq('ctx.dump', '', { headers: [['X-Custom', 'two']] }));
    assert.equal(seen[before].headers['x-custom'], 'one');
    assert.equal(seen[before + 1].headers['x-custom'], 'two');
  });

  it('event ctx has requestId, method, path, headers and signal', async () => {
    const res = await rawRequest(
      nat,
      eventReq('ctx.ev', '{"payload":1,"returnPayload":true}', {
        headers: [
          ['X-Custom', 'ev'],
          ['x-runner-request-id', 'ev-1'],
        ],
      }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(res.json().result, {
      requestId: 'ev-1',
      method: 'POST',
      path: '/__runner/event/ctx.ev',
      custom: 'ev',
      signalIsAbortSignal: true,
    });
  });
});

describe('client disconnects', () => {
  let nat;
  let started;
  let aborted;
  let abortReason;
  before(async () => {
    nat = await startNative(
      {
        tasks: {
          'dc.hang': (input, ctx) => {
            ctx.signal.addEventListener('abort', () => {
              abortReason = ctx.signal.reason;
              aborted.resolve(true);
            });
            started.resolve(ctx);
            return new Promise(() => {}); // never settles
          },
          'dc.waitAbort': (input, ctx) => {
            started.resolve(ctx);
            return new Promise((_, reject) => {
              ctx.signal.addEventListener('abort', () => {
                aborted.resolve(true);
                reject(ctx.signal.reason ?? new Error('aborted'));
              });
            });
          },
          'dc.ok': async (input) => ({ ok: input }),
        },
      },
      { auth: AUTH },
    );
  });
  after(async () => nat && nat.close());

  it('ctx.signal is aborted when the client goes away while the handler never settles', async () => {
    started = deferred();
    aborted = deferred();
    const socket = await openAndSend(nat, taskReq('dc.hang', '{"input":1}'));
    const ctx = await within(started.promise, 10000, 'handler start');
    assert.equal(ctx.signal.aborted, false);
    socket.destroy();
    await within(aborted.promise, 10000, 'ctx.signal abort');
    assert.equal(ctx.signal.aborted, true);
    assert.ok(abortReason !== undefined);
  });

  it('the server keeps serving after that', async () => {
    const res = await rawRequest(nat, taskReq('dc.ok', '{"input":2}'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { ok: true, result: { ok: 2 } });
  });

  it('a handler that rejects with the abort reason after a disconnect does not disturb the server', async () => {
    started = deferred();
    aborted = deferred();
    const socket = await openAndSend(nat, taskReq('dc.waitAbort', ''));
    await within(started.promise, 10000, 'handler start');
    socket.destroy();
    await within(aborted.promise, 10000, 'ctx.signal abort');
    await sleep(50);
    const res = await rawRequest(nat, taskReq('dc.ok', '{"input":3}'));
    assert.equal(res.status, 200);
  });

  it('a client that disconnects in the middle of the body does not disturb the server', async () => {
    const spec = {
      ...taskReq('dc.ok', undefined),
      headers: [...taskReq('dc.ok', '{}').headers, ['Content-Length', '100']],
    };
    const socket = await openAndSend(nat, spec);
    socket.write('{"input":');
    await sleep(50);
    socket.destroy();
    await sleep(50);
    const res = await rawRequest(nat, taskReq('dc.ok', '{"input":4}'));
    assert.equal(res.status, 200);
  });

  it('a client that sends half a request head and disconnects does not disturb the server', async () => {
    const s = await openAndSend(nat, { raw: 'POST /__runner/task/dc.ok HTTP/1.1\r\nHost: x\r\nContent-Le' });
    s.on('error', () => {});
    await sleep(50);
    s.destroy();
    const res = await rawRequest(nat, taskReq('dc.ok', '{"input":5}'));
    assert.equal(res.status, 200);
  });

  it('a slow handler does not block other requests', async () => {
    started = deferred();
    aborted = deferred();
    const socket = await openAndSend(nat, taskReq('dc.hang', ''));
    await within(started.promise, 10000, 'handler start');
    const res = await within(rawRequest(nat, taskReq('dc.ok', '{"input":6}')), 10000, 'second request');
    assert.equal(res.status, 200);
    socket.destroy();
    await within(aborted.promise, 10000, 'ctx.signal abort');
  });
});

// Results of every kind, for the answers written together per round.
const WRITABLE = [
  (n) => ({ n, s: `caf\u00e9 \ud83d\ude00 \ud800 ${n}`, nested: { a: [n, null, true] } }),
  (n) => [n, 'x', { y: n }],
  (n) => `string ${n} "quoted" \\ back`,
  (n) => n + 0.5,
  () => Number.NaN,
  () => false,
  () => null,
  () => undefined,
  (n) => new Date(Date.UTC(2020, 0, 1, 0, 0, n % 60)),
  (n) => ({ toJSON: (key) => `toJSON(${JSON.stringify(key)}) ${n}` }),
  (n) => () => n,
  (n) => `${n}`.padEnd(300 * 1024, 'r'), // more than the answers buffer holds
];
// Results JSON.stringify refuses: their calls fail alone.
const UNWRITABLE = [
  (n) => BigInt(n),
  (n) => {
    const loop = { n };
    loop.self = loop;
    return loop;
  },
  (n) => ({
    get boom() {
      throw new Error(`getter ${n}`);
    },
  }),
];
const RESULTS = [...WRITABLE, ...UNWRITABLE];

describe('concurrency', () => {
  let nat;
  before(async () => {
    nat = await startNative(
      {
        tasks: {
          'cc.square': async (input, ctx) => {
            await sleep(Math.floor(Math.random() * 20));
            return { n: input.n, square: input.n * input.n, requestId: ctx.requestId };
          },
          'cc.echo': async (input) => input,
          'cc.result': async ({ n, k }) => RESULTS[k](n),
          'cc.big': async (input) => ({ n: input.n, blob: 'b'.repeat(300 * 1024) }),
        },
        events: {
          'cc.ev': async (payload) => {
            await sleep(Math.floor(Math.random() * 10));
            return { seen: payload };
          },
        },
      },
      { auth: AUTH },
    );
  });
  after(async () => nat && nat.close());

  it('200 parallel task requests are all answered correctly', async () => {
    const results = await within(
      Promise.all(
        Array.from({ length: 200 }, (_, n) =>
          request(`${nat.url}/__runner/task/cc.square`, {
            headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json', 'x-runner-request-id': `cc-${n}` },
            body: JSON.stringify({ input: { n } }),
          }),
        ),
      ),
      60000,
      '200 parallel requests',
    );
    results.forEach((res, n) => {
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-runner-request-id'], `cc-${n}`);
      assert.deepEqual(res.json(), { ok: true, result: { n, square: n * n, requestId: `cc-${n}` } });
    });
  });

  it('200 parallel mixed task / event / error requests are all answered correctly', async () => {
    const results = await within(
      Promise.all(
        Array.from({ length: 200 }, (_, n) => {
          const kind = n % 4;
          if (kind === 0)
            return request(`${nat.url}/__runner/task/cc.square`, {
              headers: { 'x-runner-token': TOKEN },
              body: JSON.stringify({ input: { n } }),
            }).then((r) => [n, kind, r]);
          if (kind === 1)
            return request(`${nat.url}/__runner/event/cc.ev`, {
              headers: { 'x-runner-token': TOKEN },
              body: JSON.stringify({ payload: n, returnPayload: true }),
            }).then((r) => [n, kind, r]);
          if (kind === 2)
            return request(`${nat.url}/__runner/task/cc.square`, { headers: {}, body: '{}' }).then((r) => [n, kind, r]);
          return request(`${nat.url}/__runner/task/missing.${n}`, {
            headers: { 'x-runner-token': TOKEN },
            body: '{}',
          }).then((r) => [n, kind, r]);
        }),
      ),
      60000,
      '200 parallel requests',
    );
    for (const [n, kind, res] of results) {
      if (kind === 0) {
        assert.equal(res.status, 200);
        assert.equal(res.json().result.square, n * n);
      } else if (kind === 1) {
        assert.equal(res.status, 200);
        assert.deepEqual(res.json(), { ok: true, result: { seen: n } });
      } else if (kind === 2) {
        assert.equal(res.status, 401);
      } else {
        assert.equal(res.status, 404);
        assert.equal(res.json().error.message, `Task missing.${n} not found`);
      }
    }
  });

  it('150 parallel large and small calls (bodies over 4 KiB are dispatched one microtask turn apart) each get their own answer', async () => {
    const pad = (n) => `${n}:`.padEnd(6000, 'p');
    const results = await within(
      Promise.all(
        Array.from({ length: 150 }, (_, n) => {
          const kind = n % 5;
          const headers = { 'x-runner-token': TOKEN, 'content-type': 'application/json' };
          let path = '/__runner/task/cc.echo';
          let body = JSON.stringify({ input: { n, pad: pad(n) } });
          if (kind === 1) {
            path = '/__runner/task/cc.square';
            body = JSON.stringify({ input: { n } });
          } else if (kind === 2) {
            body = `{"input":"${pad(n)}`; // not JSON
          } else if (kind === 3) {
            path = '/__runner/task/cc.big'; // an answer larger than the out-buffer
            body = JSON.stringify({ input: { n, pad: pad(n) } });
          } else if (kind === 4) {
            path = '/__runner/event/cc.ev';
            body = JSON.stringify({ payload: pad(n), returnPayload: true });
          }
          return request(`${nat.url}${path}`, { headers, body }).then((res) => [n, kind, res]);
        }),
      ),
      60000,
      '150 parallel requests',
    );
    for (const [n, kind, res] of results) {
      if (kind === 2) {
        assert.equal(res.status, 400, `call ${n}`);
        continue;
      }
      assert.equal(res.status, 200, `call ${n}`);
      const json = res.json();
      if (kind === 0) assert.deepEqual(json, { ok: true, result: { n, pad: pad(n) } });
      else if (kind === 1) assert.equal(json.result.square, n * n);
      else if (kind === 3) assert.deepEqual([json.result.n, json.result.blob.length], [n, 300 * 1024]);
      else assert.deepEqual(json, { ok: true, result: { seen: pad(n) } });
    }
  });

  it('200 parallel small JSON calls (parsed joined per batch) each get exactly their own input, invalid ones 400', async () => {
    // Bodies of every JSON shape; `echo` answers the input it was given.
    const shapes = [
      (n) => `{"input":{"n":${n},"s":"caf\u00e9 \ud83d\ude00 ${n}"}}`,
      (n) => `  {"input": [${n}, "\\u00e9", "\\ud800", 1e400, -0.5e-3, true, null]}  `,
      (n) => `{"n":${n},"noInput":true}`,
      (n) => `{"input":{"__proto__":{"n":${n}},"a":{"b":{"c":[[[${n}]]]}}}}`,
      (n) => `"just a string ${n}"`,
      (n) => `{"input":${n}} trailing`,
      (n) => `{"input":"${'é'.repeat(n % 7)}${n}"}`,
      (n) => `{"input":{"n":${n}},}`,
    ];
    const results = await within(
      Promise.all(
        Array.from({ length: 200 }, (_, n) => {
          const body = shapes[n % shapes.length](n);
          return request(`${nat.url}/__runner/task/cc.echo`, {
            headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
            body,
          }).then((res) => [body, res]);
        }),
      ),
      60000,
      '200 parallel requests',
    );
    for (const [body, res] of results) {
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {
        assert.equal(res.status, 400, body);
        assert.equal(res.json().error.code, 'INVALID_JSON');
        continue;
      }
      const input =
        parsed && typeof parsed === 'object' && Object.prototype.hasOwnProperty.call(parsed, 'input')
          ? parsed.input
          : parsed;
      assert.equal(res.status, 200, body);
      assert.equal(res.text, JSON.stringify({ ok: true, result: input }), body);
    }
  });

  async function resultsOfKinds(kinds) {
    const results = await within(
      Promise.all(
        Array.from({ length: 200 }, (_, n) => {
          const k = kinds[n % kinds.length];
          return request(`${nat.url}/__runner/task/cc.result`, {
            headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
            body: JSON.stringify({ input: { n, k } }),
          }).then((res) => [n, k, res]);
        }),
      ),
      60000,
      '200 parallel requests',
    );
    for (const [n, k, res] of results) {
      let text;
      try {
        // What one call alone answers: the result as JSON.stringify writes it.
        text = JSON.stringify(RESULTS[k](n));
      } catch {
        assert.equal(res.status, 500, `kind ${k}`);
        assert.equal(res.json().ok, false);
        continue;
      }
      assert.equal(res.status, 200, `kind ${k}`);
      assert.equal(res.text, text === undefined ? '{"ok":true}' : `{"ok":true,"result":${text}}`, `kind ${k}`);
    }
  }

  it('200 parallel calls returning every kind of result (written together per round) each get the answer they would get alone', async () => {
    await resultsOfKinds(WRITABLE.map((_, k) => k));
  });

  it('a result JSON.stringify refuses fails only its own call when written with others', async () => {
    await resultsOfKinds(RESULTS.map((_, k) => k));
  });

  it('many sequential requests on one keep-alive connection', async () => {
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let n = 0; n < 50; n += 1) {
        const res = await new Promise((resolve, reject) => {
          const req = http.request(
            `${nat.url}/__runner/task/cc.square`,
            { method: 'POST', agent, headers: { 'x-runner-token': TOKEN } },
            (r) => {
              let d = '';
              r.on('data', (c) => (d += c));
              r.on('end', () => resolve({ status: r.statusCode, body: JSON.parse(d), reused: req.reusedSocket }));
            },
          );
          req.on('error', reject);
          req.end(JSON.stringify({ input: { n } }));
        });
        assert.equal(res.status, 200);
        assert.equal(res.body.result.square, n * n);
        if (n > 0) assert.equal(res.reused, true, 'connection is kept alive');
      }
    } finally {
      agent.destroy();
    }
  });
});
