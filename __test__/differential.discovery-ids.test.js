'use strict';
// Discovery (handleDiscovery) and request ids (ensureRequestId), compared with Runner's nodeExposure.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  startPair,
  sameAnswer,
  rawRequest,
  allHandlers,
  taskReq,
  eventReq,
  discoveryReq,
  authHeader,
  UUID_RE,
  TOKEN,
} = require('./helpers');

const AUTH = { token: TOKEN };

// Registered in sorted order on both sides so that an implementation listing ids in
// registration order or sorted order gives the same document.
const discoveryHandlers = () => ({
  tasks: {
    'app.alpha': async () => 'alpha',
    'app.beta': async (input) => input,
    'x/y.z': async () => 'slashed',
  },
  events: {
    'app.ev.one': async (p) => ({ one: p }),
    'app.ev.two': async () => undefined,
  },
});

describe('discovery of a standalone server (compared with a reference whose tunnel resource allow-lists exactly the registered ids)', () => {
  let pair;
  before(async () => {
    pair = await startPair(discoveryHandlers(), { auth: AUTH, exposure: 'allowList' });
  });
  after(async () => pair && pair.close());

  it('GET discovery lists the registered tasks and events with enabled: true (same answer as the reference)', async () => {
    const { nat } = await sameAnswer(pair, discoveryReq(), '200');
    assert.deepEqual(nat.json(), {
      ok: true,
      result: {
        allowList: { enabled: true, tasks: ['app.alpha', 'app.beta', 'x/y.z'], events: ['app.ev.one', 'app.ev.two'] },
      },
    });
  });
  it('allow-listed task is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.beta', '{"input":{"b":1}}'), '200');
  });
  it('allow-listed task with a slash in its id is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('x%2Fy.z', ''), '200');
  });
  it('allow-listed event is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, eventReq('app.ev.one', '{"payload":3,"returnPayload":true}'), '200');
  });
  it('discovery via HEAD -> 405 (same answer as the reference)', async () => {
    await sameAnswer(pair, discoveryReq({ method: 'HEAD' }), '405'); // a HEAD answer has no body (no code)
  });
});

describe('discovery with nothing registered (compared with an allow-listing reference with empty lists)', () => {
  let pair;
  before(async () => {
    pair = await startPair({}, { auth: AUTH, exposure: 'allowList' });
  });
  after(async () => pair && pair.close());
  it('GET discovery -> enabled with empty lists (same answer as the reference)', async () => {
    const { nat } = await sameAnswer(pair, discoveryReq(), '200');
    assert.deepEqual(nat.json(), { ok: true, result: { allowList: { enabled: true, tasks: [], events: [] } } });
  });
});

describe('disableDiscovery: true (taken from the reference handleDiscovery)', () => {
  let pair;
  before(async () => {
    pair = await startPair(discoveryHandlers(), { auth: AUTH, disableDiscovery: true });
  });
  after(async () => pair && pair.close());
  const cases = [
    ['GET discovery -> 404', discoveryReq(), '404 NOT_FOUND'],
    ['GET discovery without token -> 404 (before auth)', discoveryReq({ auth: false }), '404 NOT_FOUND'],
    ['POST discovery -> 404 (before the method check)', discoveryReq({ method: 'POST' }), '404 NOT_FOUND'],
    [
      'OPTIONS discovery is still a preflight',
      { method: 'OPTIONS', path: '/__runner/discovery', headers: [['Origin', 'https://x.example']] },
      '204',
    ],
    ['tasks still work', taskReq('app.beta', '{"input":1}'), '200'],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});

describe('request ids (taken from the reference ensureRequestId)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, limits: { json: { maxSize: 256 } } });
  });
  after(async () => pair && pair.close());
  const rid = (v) => ['x-runner-request-id', v];
  const cases = [
    ['valid client id is kept', rid('abc-123_x.y:z')],
    ['valid id of exactly 128 characters is kept', rid('a'.repeat(128))],
    ['id of 129 characters is replaced by a UUID', rid('a'.repeat(129))],
    ['id with an inner space is replaced', rid('a b')],
    ['id with a slash is replaced', rid('a/b')],
    ['id with angle brackets is replaced', rid('<script>')],
    ['id with a comma is replaced', rid('a,b')],
    ['id with non-ASCII bytes is replaced', rid(Buffer.from('café', 'utf8'))],
    ['empty id is replaced', rid('')],
    ['surrounding whitespace is trimmed', rid('  trimmed-id  ')],
    ['UUID from the client is kept', rid('123e4567-e89b-12d3-a456-426614174000')],
  ];
  for (const [label, header] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, taskReq('app.echo', '{"input":"rid"}', { headers: [header] }), '200', { label });
      // and the handler sees the id that was echoed
      const res = await rawRequest(pair.nat, taskReq('app.requestId', '', { headers: [header] }));
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { ok: true, result: { requestId: res.headers['x-runner-request-id'] } });
    });
  }
  it('repeated request id headers are replaced (joined value is invalid) (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.echo', '{"input":1}', { headers: [rid('first'), rid('second')] }), '200');
  });
  it('generated id is handed to the handler as ctx.requestId', async () => {
    const res = await rawRequest(pair.nat, taskReq('app.requestId', ''));
    const id = res.headers['x-runner-request-id'];
    assert.match(id, UUID_RE);
    assert.deepEqual(res.json(), { ok: true, result: { requestId: id } });
  });
  it('kept client id is handed to the handler as ctx.requestId', async () => {
    const res = await rawRequest(pair.nat, taskReq('app.requestId', '', { headers: [rid('client.id:1')] }));
    assert.equal(res.headers['x-runner-request-id'], 'client.id:1');
    assert.deepEqual(res.json(), { ok: true, result: { requestId: 'client.id:1' } });
  });
  it('generated ids differ between requests', async () => {
    const a = await rawRequest(pair.nat, taskReq('app.echo', ''));
    const b = await rawRequest(pair.nat, taskReq('app.echo', ''));
    assert.notEqual(a.headers['x-runner-request-id'], b.headers['x-runner-request-id']);
  });

  const where = [
    ['on 401', taskReq('app.echo', '{}', { auth: false }), '401 UNAUTHORIZED'],
    ['on 404 unknown task', taskReq('missing', '{}'), '404 NOT_FOUND'],
    ['on 404 under the base path', { ...taskReq('x', '{}'), path: '/__runner/nope' }, '404 NOT_FOUND'],
    ['not on 404 outside the base path', { ...taskReq('x', '{}'), path: '/nope' }, '404 NOT_FOUND'],
    ['on 405', taskReq('app.echo', undefined, { method: 'GET' }), '405 METHOD_NOT_ALLOWED'],
    ['on 400', taskReq('app.echo', '{'), '400 INVALID_JSON'],
    ['on 413', taskReq('app.echo', `{"input":"${'x'.repeat(300)}"}`), '413 PAYLOAD_TOO_LARGE'],
    ['on 500', taskReq('app.throwPlain', ''), '500 INTERNAL_ERROR'],
    ['on 499', taskReq('app.throwCancellation', ''), '499 REQUEST_ABORTED'],
    ['on events', eventReq('app.ev.wrap', '{"payload":1}'), '200'],
    ['on discovery', discoveryReq(), '200'],
    [
      'not on preflight',
      { method: 'OPTIONS', path: '/__runner/task/app.echo', headers: [['Origin', 'https://x.example']] },
      '204',
    ],
  ];
  for (const [label, spec, expected] of where) {
    it(`request id ${label}, client id kept (same answer as the reference)`, async () => {
      await sameAnswer(pair, { ...spec, headers: [...spec.headers, rid('where-test-1')] }, expected, { label });
    });
    it(`request id ${label}, generated (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});

describe('repeated and odd headers (taken from the reference)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());
  const cases = [
    [
      'header names in mixed case',
      {
        method: 'POST',
        path: '/__runner/task/app.echo',
        headers: [
          ['X-Runner-Token', TOKEN],
          ['CONTENT-TYPE', 'application/json'],
        ],
        body: '{"input":"mixed"}',
      },
      '200',
    ],
    [
      'repeated unrelated header',
      taskReq('app.echo', '{"input":1}', {
        headers: [
          ['x-custom', 'a'],
          ['x-custom', 'b'],
        ],
      }),
      '200',
    ],
    [
      'repeated x-runner-context header',
      taskReq('app.echo', '{"input":1}', {
        headers: [
          ['x-runner-context', '{}'],
          ['x-runner-context', '{}'],
        ],
      }),
      '200',
    ],
    [
      'invalid x-runner-context header is ignored',
      taskReq('app.echo', '{"input":1}', { headers: [['x-runner-context', '{not json']] }),
      '200',
    ],
    ['Connection: close', taskReq('app.echo', '{"input":1}', { headers: [['Connection', 'close']] }), '200'],
    ['Expect: 100-continue', taskReq('app.echo', '{"input":1}', { headers: [['Expect', '100-continue']] }), '200'],
    ['HTTP/1.0 request', { ...taskReq('app.echo', '{"input":1}'), httpVersion: '1.0' }, '200'],
    [
      'request without Host header on HTTP/1.0',
      { ...taskReq('app.echo', '{"input":1}'), httpVersion: '1.0', noHost: true },
      '200',
    ],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});
