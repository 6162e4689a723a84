'use strict';
// Differential tests of the Runner integration: ONE Runner app definition, run once exposed by
// Runner's nodeExposure and once by nativeExposure (same http config), the same raw requests to
// both, answers compared (status, body bytes, headers; see helpers/compare.js).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Serializer } = require('@bluelibs/runner');
const { sameAnswer } = require('./helpers');
const { startRunnerPair, userContext, tenantContext, TOKEN, API_KEY } = require('./helpers/rn-app');

const serializer = new Serializer();
const BASE = '/__runner';

function post(path, body, { headers = [], token = TOKEN, base = BASE } = {}) {
  const h = [['content-type', 'application/json'], ...headers];
  if (token !== null) h.unshift(['x-runner-token', token]);
  return {
    method: 'POST',
    path: base + path,
    headers: h,
    body: typeof body === 'string' || body === undefined ? body : serializer.stringify(body),
  };
}
const task = (id, input, opts) => post(`/task/${encodeURIComponent(id)}`, { input }, opts);
const event = (id, payload, returnPayload, opts) =>
  post(`/event/${encodeURIComponent(id)}`, returnPayload ? { payload, returnPayload: true } : { payload }, opts);
const contextHeader = (values) => {
  const map = {};
  if (values.user !== undefined) map[userContext.id] = userContext.serialize(values.user);
  if (values.tenant !== undefined) map[tenantContext.id] = tenantContext.serialize(values.tenant);
  return ['x-runner-context', serializer.stringify(map)];
};

/**
 * Send `spec` to both servers, compare, and check that both answered `expect.status` (and
 * `expect.code`, the error's); optionally check the (shared) body.
 */
async function both(pair, spec, expect) {
  const { ref, nat } = await sameAnswer(pair, spec, expect, { label: `${spec.method} ${spec.path}` });
  if (expect.body !== undefined) assert.deepEqual(serializer.parse(ref.text), expect.body);
  return { ref, nat };
}

function withPair(http, options, fn) {
  let pair;
  before(async () => {
    pair = await startRunnerPair(http, options);
  });
  after(async () => pair && pair.close());
  fn(() => pair);
}

describe('nativeExposure vs nodeExposure: allow-lists', () => {
  withPair({ auth: { token: TOKEN } }, {}, (p) => {
    it('an allow-listed task runs through the task runner', async () => {
      await both(p(), task('rn.add', { a: 2, b: 40 }), { status: 200, body: { ok: true, result: 42 } });
      await both(p(), task('rn.echo'), { status: 200 }); // undefined result
      await both(p(), task('rn.echo', { d: new Date(3), m: new Map([[1, 2]]) }), { status: 200 });
    });
    it('a task allow-listed by its definition object, with its middleware', async () => {
      await both(p(), task('rn.middlewared', {}), {
        status: 200,
        body: { ok: true, result: { ran: true, stamped: true } },
      });
    });
    it('a task chosen by a selector function of a "both"-mode tunnel (and tunneled by it)', async () => {
      await both(p(), task('rn.sel.one', 7), {
        status: 200,
        body: { ok: true, result: { tunneled: 'rn.sel.one', input: 7 } },
      });
    });
    it('a task listed only by a non-http tunnel is not exposed', async () => {
      await both(p(), task('rn.hidden'), {
        status: 403,
        code: 'FORBIDDEN',
        body: { ok: false, error: { message: 'Task rn.hidden not exposed', code: 'FORBIDDEN' } },
      });
    });
    it('an unknown task is 403 not exposed (allow-list before existence)', async () => {
      await both(p(), task('rn.nope'), { status: 403, code: 'FORBIDDEN' });
    });
    it('an event not allow-listed is 403', async () => {
      await both(p(), event('rn.hiddenEvent', 1), {
        status: 403,
        code: 'FORBIDDEN',
        body: { ok: false, error: { message: 'Event rn.hiddenEvent not exposed', code: 'FORBIDDEN' } },
      });
    });
    it('the allow-list is checked before the body is parsed', async () => {
      await both(p(), post('/task/rn.hidden', '{not json'), { status: 403, code: 'FORBIDDEN' });
      await both(p(), post('/task/rn.add', '{not json'), { status: 400, code: 'INVALID_JSON' });
    });
    it('discovery lists the same ids', async () => {
      await both(
        p(),
        { method: 'GET', path: `${BASE}/discovery`, headers: [['x-runner-token', TOKEN]] },
        { status: 200 },
      );
    });
    it('wrong method', async () => {
      await both(
        p(),
        { method: 'GET', path: `${BASE}/task/rn.add`, headers: [['x-runner-token', TOKEN]] },
        { status: 405, code: 'METHOD_NOT_ALLOWED' },
      );
      await both(
        p(),
        { method: 'POST', path: `${BASE}/discovery`, headers: [['x-runner-token', TOKEN]] },
        { status: 405, code: 'METHOD_NOT_ALLOWED' },
      );
    });
  });
});

describe('nativeExposure vs nodeExposure: exposure without server tunnels', () => {
  for (const tunnels of ['none', 'client']) {
    describe(`tunnels: ${tunnels}`, () => {
      withPair({ auth: { token: TOKEN } }, { tunnels }, (p) => {
        it('fails closed: 403 Exposure not enabled', async () => {
          await both(p(), task('rn.add', { a: 1, b: 1 }), {
            status: 403,
            code: 'FORBIDDEN',
            body: { ok: false, error: { message: 'Exposure not enabled', code: 'FORBIDDEN' } },
          });
          await both(p(), event('rn.ordered', {}), { status: 403, code: 'FORBIDDEN' });
        });
        it('discovery says not enabled', async () => {
          await both(
            p(),
            { method: 'GET', path: `${BASE}/discovery`, headers: [['x-runner-token', TOKEN]] },
            { status: 200 },
          );
        });
      });
    });
  }
  describe('dangerouslyAllowOpenExposure', () => {
    withPair({ auth: { token: TOKEN }, dangerouslyAllowOpenExposure: true }, { tunnels: 'none' }, (p) => {
      it('every store task is callable, unknown ids are 404', async () => {
        await both(p(), task('rn.hidden'), { status: 200 });
        await both(p(), task('rn.nope'), { status: 404, code: 'NOT_FOUND' });
        await both(p(), event('rn.hiddenEvent', 1), { status: 200 });
        await both(
          p(),
          { method: 'GET', path: `${BASE}/discovery`, headers: [['x-runner-token', TOKEN]] },
          { status: 200 },
        );
      });
    });
  });
});

describe('nativeExposure vs nodeExposure: errors', () => {
  withPair({ auth: { token: TOKEN } }, {}, (p) => {
    it('typed error with httpCode', async () => {
      await both(p(), task('rn.buy', { sku: 'A-1' }), { status: 409, code: 'INTERNAL_ERROR' });
    });
    it('typed error without httpCode (500, message and id kept)', async () => {
      await both(p(), task('rn.noHttpCode'), { status: 500, code: 'INTERNAL_ERROR' });
    });
    it('typed error with httpCode 500', async () => {
      await both(p(), task('rn.explicit500'), { status: 500, code: 'INTERNAL_ERROR' });
    });
    it('typed error whose data is undefined (kept by the serializer)', async () => {
      const { ref } = await both(p(), task('rn.goneNoData'), { status: 410, code: 'INTERNAL_ERROR' });
      assert.match(ref.text, /"data":\{"__type":"Undefined"/);
    });
    it('a typed error whose helper is not registered in the app is a plain 500', async () => {
      await both(p(), task('rn.unregistered'), {
        status: 500,
        code: 'INTERNAL_ERROR',
        body: { ok: false, error: { message: 'Internal Error', code: 'INTERNAL_ERROR' } },
      });
    });
    it('plain error: 500 without details', async () => {
      await both(p(), task('rn.crash'), { status: 500, code: 'INTERNAL_ERROR' });
    });
    it('a plain AbortError is a 500 like any error', async () => {
      await both(p(), task('rn.abortError'), { status: 500, code: 'INTERNAL_ERROR' });
    });
    it("Runner's cancellation error is 499", async () => {
      await both(p(), task('rn.cancel'), { status: 499, code: 'REQUEST_ABORTED' });
    });
    it('input validation failure (inputSchema)', async () => {
      await both(p(), task('rn.validated', { n: 'x' }), { status: 500, code: 'INTERNAL_ERROR' });
      await both(p(), task('rn.validated', { n: 4 }), { status: 200, body: { ok: true, result: { n: 40 } } });
    });
    it('event hook failures: typed and plain', async () => {
      await both(p(), event('rn.failing', { typed: true }), { status: 409, code: 'INTERNAL_ERROR' });
      await both(p(), event('rn.failing', {}), { status: 500, code: 'INTERNAL_ERROR' });
      await both(p(), event('rn.failing', { typed: true }, true), { status: 409, code: 'INTERNAL_ERROR' });
    });
    it('failures are logged to the Runner logger like the reference', async () => {
      const rid = ['x-runner-request-id', 'log-check-1'];
      p().ref.logs.length = 0;
      p().nat.logs.length = 0;
      await both(p(), task('rn.crash', undefined, { headers: [rid] }), { status: 500, code: 'INTERNAL_ERROR' });
      await both(p(), event('rn.failing', {}, false, { headers: [rid] }), { status: 500, code: 'INTERNAL_ERROR' });
      const pick = (logs) =>
        logs
          .filter((l) => l.message === 'exposure.task.error' || l.message === 'exposure.event.error')
          .map((l) => ({
            level: l.level,
            message: l.message,
            error: l.error && { name: l.error.name, message: l.error.message },
            context: l.context,
          }));
      const refLogs = pick(p().ref.logs);
      assert.equal(refLogs.length, 2);
      assert.deepEqual(pick(p().nat.logs), refLogs);
    });
  });
});

describe('nativeExposure vs nodeExposure: events', () => {
  withPair({ auth: { token: TOKEN } }, {}, (p) => {
    it('emit without returnPayload', async () => {
      await both(p(), event('rn.ordered', { id: 1 }), { status: 200, body: { ok: true } });
    });
    it('emitWithResult with returnPayload', async () => {
      await both(p(), event('rn.ordered', { id: 2, at: new Date(0) }, true), {
        status: 200,
        body: { ok: true, result: { id: 2, at: new Date(0), seen: true } },
      });
      await both(p(), event('rn.noop', { keep: [1, 2] }, true), { status: 200 });
      await both(p(), event('rn.noop', undefined, true), { status: 200 });
    });
    it('a hook that clears the payload', async () => {
      await both(p(), event('rn.clear', { a: 1 }, true), { status: 200 });
    });
    it('event payload validation (payloadSchema)', async () => {
      await both(p(), event('rn.validatedEvent', { n: 1 }, true), {
        status: 200,
        body: { ok: true, result: { n: 2 } },
      });
      await both(p(), event('rn.validatedEvent', { n: 'x' }, true), { status: 500, code: 'INTERNAL_ERROR' });
    });
    it('returnPayload on a parallel event is 400', async () => {
      await both(p(), event('rn.parallel', {}, true), { status: 400, code: 'PARALLEL_EVENT_RETURN_UNSUPPORTED' });
      await both(p(), event('rn.parallel', {}), { status: 200 });
    });
    it('odd bodies', async () => {
      await both(p(), post('/event/rn.ordered', undefined), { status: 200 });
      await both(p(), post('/event/rn.ordered', '5'), { status: 200 });
      await both(p(), post('/event/rn.ordered', '{"returnPayload":1}'), { status: 200 });
    });
  });
});

describe('nativeExposure vs nodeExposure: async contexts and useExposureContext', () => {
  withPair({ auth: { token: TOKEN } }, {}, (p) => {
    it('x-runner-context hydrates the registered contexts', async () => {
      const h = contextHeader({ user: { name: 'ada', since: new Date(5) }, tenant: 'acme' });
      await both(p(), task('rn.whoami', undefined, { headers: [h] }), {
        status: 200,
        body: { ok: true, result: { user: { name: 'ada', since: new Date(5) }, tenant: 'acme' } },
      });
    });
    it('only some contexts, or none', async () => {
      await both(p(), task('rn.whoami', undefined, { headers: [contextHeader({ tenant: 't2' })] }), { status: 200 });
      await both(p(), task('rn.whoami'), { status: 200 });
    });
    it('malformed headers and values are ignored', async () => {
      await both(p(), task('rn.whoami', undefined, { headers: [['x-runner-context', '{nope']] }), { status: 200 });
      await both(
        p(),
        task('rn.whoami', undefined, {
          headers: [['x-runner-context', '{"rn.ctx.user":"{bad","rn.ctx.tenant":"\\"ok\\""}']],
        }),
        { status: 200 },
      );
      await both(p(), task('rn.whoami', undefined, { headers: [['x-runner-context', 'null']] }), { status: 200 });
    });
    it('a tunnel with allowAsyncContext: false does not hydrate', async () => {
      const { ref } = await both(
        p(),
        task('rn.whoamiNoCtx', undefined, { headers: [contextHeader({ user: 'eve' })] }),
        { status: 200 },
      );
      assert.deepEqual(serializer.parse(ref.text).result, { user: null });
    });
    it('events get the contexts too', async () => {
      await both(p(), event('rn.ctxEvent', {}, true, { headers: [contextHeader({ user: 'bob' })] }), {
        status: 200,
        body: { ok: true, result: { user: 'bob' } },
      });
    });
    it('useExposureContext() inside a task', async () => {
      const spec = task('rn.exposure', undefined, {
        headers: [
          ['x-custom', 'hello'],
          ['x-runner-request-id', 'req-42'],
        ],
      });
      spec.path += '?q=1&r=2';
      const { nat } = await both(p(), spec, { status: 200 });
      const result = serializer.parse(nat.text).result;
      assert.equal(result.isUrl, true);
      assert.equal(result.custom, 'hello');
      assert.equal(result.requestId, 'req-42');
      assert.equal(result.basePath, BASE);
    });
  });
});

describe('nativeExposure vs nodeExposure: auth', () => {
  describe('token', () => {
    withPair({ auth: { token: TOKEN } }, {}, (p) => {
      it('missing and wrong tokens are 401', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null }), { status: 401, code: 'UNAUTHORIZED' });
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: 'nope' }), { status: 401, code: 'UNAUTHORIZED' });
        await both(p(), { method: 'GET', path: `${BASE}/discovery` }, { status: 401, code: 'UNAUTHORIZED' });
      });
    });
  });
  describe('custom header and several tokens', () => {
    withPair({ auth: { token: ['one', 'two'], header: 'X-Api-Token' } }, {}, (p) => {
      it('any listed token in the configured header', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null, headers: [['x-api-token', 'two']] }), {
          status: 200,
        });
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: 'one' }), { status: 401, code: 'UNAUTHORIZED' });
      });
    });
  });
  describe("an empty header name (the reference's tokens can never match)", () => {
    withPair({ auth: { token: TOKEN, header: '' } }, {}, (p) => {
      it('401 even with the token', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }), { status: 401, code: 'UNAUTHORIZED' });
      });
    });
  });
  describe('an empty token list', () => {
    withPair({ auth: { token: [] } }, {}, (p) => {
      it('401, not AUTH_NOT_CONFIGURED', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }), { status: 401, code: 'UNAUTHORIZED' });
      });
    });
  });
  describe('auth validator tasks', () => {
    withPair({ auth: { token: TOKEN } }, { validator: true }, (p) => {
      it('a validator task lets a request in without the token', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null, headers: [['x-api-key', API_KEY]] }), {
          status: 200,
        });
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null, headers: [['x-api-key', 'wrong']] }), {
          status: 401,
          code: 'UNAUTHORIZED',
        });
        await both(p(), task('rn.add', { a: 1, b: 2 }), { status: 200 });
      });
    });
  });
  describe('validator without a token', () => {
    withPair({}, { validator: true }, (p) => {
      it('validator decides; no AUTH_NOT_CONFIGURED', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null, headers: [['x-api-key', API_KEY]] }), {
          status: 200,
        });
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null }), { status: 401, code: 'UNAUTHORIZED' });
      });
    });
  });
  describe('no auth config', () => {
    withPair({}, {}, (p) => {
      it('500 AUTH_NOT_CONFIGURED', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null }), { status: 500, code: 'AUTH_NOT_CONFIGURED' });
      });
    });
  });
  describe('allowAnonymous', () => {
    withPair({ auth: { allowAnonymous: true } }, {}, (p) => {
      it('anyone is served', async () => {
        await both(p(), task('rn.add', { a: 1, b: 2 }, { token: null }), { status: 200 });
      });
    });
  });
});

describe('nativeExposure vs nodeExposure: CORS, basePath, limits, discovery switch', () => {
  describe('cors origin list with credentials', () => {
    withPair(
      {
        auth: { token: TOKEN },
        cors: { origin: ['https://a.example'], credentials: true, exposedHeaders: ['x-runner-request-id'], maxAge: 60 },
      },
      {},
      (p) => {
        it('preflight', async () => {
          await both(
            p(),
            {
              method: 'OPTIONS',
              path: `${BASE}/task/rn.add`,
              headers: [
                ['origin', 'https://a.example'],
                ['access-control-request-method', 'POST'],
                ['access-control-request-headers', 'content-type, x-runner-token'],
              ],
            },
            { status: 204 },
          );
          await both(
            p(),
            { method: 'OPTIONS', path: `${BASE}/task/rn.add`, headers: [['origin', 'https://evil.example']] },
            { status: 204 },
          );
        });
        it('actual requests, matching and not', async () => {
          await both(p(), task('rn.add', { a: 1, b: 2 }, { headers: [['origin', 'https://a.example']] }), {
            status: 200,
          });
          await both(p(), task('rn.add', { a: 1, b: 2 }, { headers: [['origin', 'https://evil.example']] }), {
            status: 200,
          });
          await both(p(), task('rn.hidden', undefined, { headers: [['origin', 'https://a.example']] }), {
            status: 403,
            code: 'FORBIDDEN',
          });
        });
      },
    );
  });
  for (const [label, origin] of [
    ['RegExp', /^https:\/\/a\.example$/],
    ['function', (o) => (o === 'https://a.example' ? o : null)],
  ]) {
    describe(`cors origin as a ${label}`, () => {
      withPair({ auth: { token: TOKEN }, cors: { origin } }, {}, (p) => {
        it('matching, not matching, no origin; preflight', async () => {
          await both(p(), task('rn.add', { a: 1, b: 2 }, { headers: [['origin', 'https://a.example']] }), {
            status: 200,
          });
          await both(p(), task('rn.add', { a: 1, b: 2 }, { headers: [['origin', 'https://b.example']] }), {
            status: 200,
          });
          await both(p(), task('rn.add', { a: 1, b: 2 }), { status: 200 });
          await both(
            p(),
            {
              method: 'OPTIONS',
              path: `${BASE}/task/rn.add`,
              headers: [
                ['origin', 'https://a.example'],
                ['access-control-request-method', 'POST'],
              ],
            },
            { status: 204 },
          );
        });
      });
    });
  }
  describe('default cors', () => {
    withPair({ auth: { token: TOKEN } }, {}, (p) => {
      it('wildcard origin', async () => {
        const { ref } = await both(
          p(),
          task('rn.add', { a: 1, b: 2 }, { headers: [['origin', 'https://x.example']] }),
          { status: 200 },
        );
        assert.equal(ref.headers['access-control-allow-origin'], '*');
      });
    });
  });
  describe('custom basePath, json limit, discovery disabled', () => {
    withPair(
      { auth: { token: TOKEN }, basePath: 'api/', limits: { json: { maxSize: 64 } }, disableDiscovery: true },
      {},
      (p) => {
        it('serves under the normalised base path', async () => {
          await both(p(), task('rn.add', { a: 1, b: 2 }, { base: '/api' }), { status: 200 });
          await both(p(), task('rn.add', { a: 1, b: 2 }), { status: 404, code: 'NOT_FOUND' });
        });
        it('413 over the json limit', async () => {
          await both(p(), task('rn.echo', 'x'.repeat(200), { base: '/api' }), {
            status: 413,
            code: 'PAYLOAD_TOO_LARGE',
          });
        });
        it('discovery is 404', async () => {
          await both(
            p(),
            { method: 'GET', path: '/api/discovery', headers: [['x-runner-token', TOKEN]] },
            { status: 404, code: 'NOT_FOUND' },
          );
        });
      },
    );
  });
});

// nativeExposure reads bodies without the Serializer's markers with JSON.parse and writes plain
// results with JSON.stringify (lib/serializer-json.js); every other body and result goes
// through the Serializer. Either way the task must receive, and the client get, what
// nodeExposure gives. rn.shape answers with a description of its input (types, prototypes, key
// order) and a result of the kind `make` names.
describe('nativeExposure vs nodeExposure: bodies and results on both sides of the JSON fast path', () => {
  withPair({ auth: { token: TOKEN } }, {}, (p) => {
    const shape = (input) => task('rn.shape', input);
    const raw = (text) => post('/task/rn.shape', text);

    it('plain bodies, small and large, with key orders JSON.parse keeps', async () => {
      await both(p(), shape({ b: 1, a: [1, { c: null, 10: 'x', 2: 'y' }], 'é😀': -0 }), { status: 200 });
      await both(p(), raw('{"input":{"a":1,"a":2,"b":{}}}'), { status: 200 }); // a duplicate key
      await both(p(), raw(' \t{ "input" : [ 1 , "\\u00e9" , "\\ud800" ] }\r\n'), { status: 200 });
      const big = { items: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) };
      await both(p(), shape(big), { status: 200 }); // past the size joined per batch
      await both(p(), raw('5'), { status: 200 }); // no input key: the body is the input
    });

    it('bodies with the Serializer’s markers: typed values, graphs, escaped and unsafe keys', async () => {
      await both(p(), shape({ when: new Date(7), n: 5n, u: undefined, m: new Map([['k', 1]]) }), { status: 200 });
      await both(p(), post('/task/rn.shape', serializer.serialize({ input: { a: 1 } })), { status: 200 });
      await both(p(), shape({ __type: 'x', __graph: true, '$runner.escape::y': 1 }), { status: 200 }); // escaped by the client
      await both(p(), raw('{"input":{"$runner.escape::__type":"Date","value":1}}'), { status: 200 });
      await both(p(), raw('{"input":{"__proto__":{"polluted":1},"constructor":2,"prototype":3,"ok":4}}'), {
        status: 200,
      });
      await both(p(), raw('{"input":{"\\u005f_type":"Date","value":"1970-01-01T00:00:00.000Z"}}'), { status: 200 });
      await both(p(), raw('{"input":{"\\u0061":1}}'), { status: 200 }); // an escaped key that spells nothing special
      const bigMarked = { at: new Date(1), pad: 'x'.repeat(5000) };
      await both(p(), shape(bigMarked), { status: 200 });
    });

    it('bodies neither reads: invalid JSON and nesting past the Serializer’s limit', async () => {
      await both(p(), raw('{"input":'), { status: 400 });
      await both(p(), raw('\ufeff{"input":1}'), { status: 400 });
      const deep = '{"input":' + '['.repeat(1001) + ']'.repeat(1001) + '}';
      await both(p(), raw(deep), { status: 400 }); // the reference answers INVALID_JSON
    });

    for (const make of [
      'plain',
      'undefinedInside',
      'hole',
      'nan',
      'bigint',
      'date',
      'instance',
      'nullProto',
      'toJSON',
      'hiddenToJSON',
      'markerKeys',
      'unsafeKeys',
      'boxed',
      'symbolKey',
      'deep',
      'repeated',
      'cycle',
    ]) {
      it(`a result of kind ${make} is written as the Serializer writes it`, async () => {
        // A function (toJSON's) or a cycle cannot be written: the reference answers 500.
        const status = make === 'cycle' || make === 'toJSON' ? 500 : 200;
        await both(p(), shape({ make }), { status });
      });
    }
  });
});
