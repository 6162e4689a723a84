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
    const { nat } = await sameAnswer(pair, discoveryReq());
    assert.deepEqual(nat.json(), {
      ok: true,
      result: {
        allowList: { enabled: true, tasks: ['app.alpha', 'app.beta', 'x/y.z'], events: ['app.ev.one', 'app.ev.two'] },
      },
    });
  });
  it('allow-listed task is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.beta', '{"input":{"b":1}}'));
  });
  it('allow-listed task with a slash in its id is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('x%2Fy.z', ''));
  });
  it('allow-listed event is callable (same answer as the reference)', async () => {
    await sameAnswer(pair, eventReq('app.ev.one', '{"payload":3,"returnPayload":true}'));
  });
  it('discovery via HEAD -> 405 (same answer as the reference)', async () => {
    await sameAnswer(pair, discoveryReq({ method: 'HEAD' }));
  });
});

describe('discovery with nothing registered (compared with an allow-listing reference with empty lists)', () => {
  let pair;
  before(async () => {
    pair = await startPair({}, { auth: AUTH, exposure: 'allowList' });
  });
  after(async () => pair && pair.close());
  it('GET discovery -> enabled with empty lists (same answer as the reference)', async () => {
    const { nat } = await sameAnswer(pair, discoveryReq());
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
    ['GET discovery -> 404', discoveryReq()],
    ['GET discovery without token -> 404 (before auth)', discoveryReq({ auth: false })],
    ['POST discovery -> 404 (before the method check)', discoveryReq({ method: 'POST' })],
    [
      'OPTIONS discovery is still a preflight',
      { method: 'OPTIONS', path: '/__runner/discovery', headers: [['Origin', 'https://x.example']] },
    ],
    ['tasks still work', taskReq('app.beta', '{"input":1}')],
  ];
  for (const [label, spec] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, { label });
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
      await sameAnswer(pair, taskReq('app.echo', '{"input":"rid"}', { headers: [header] }), { label });
      // and the handler sees the id that was echoed
      const res = await rawRequest(pair.nat, taskReq('app.requestId', '', { headers: [header] }));
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { ok: true, result: { requestId: res.headers['x-runner-request-id'] } });
    });
  }
  it('repeated request id headers are replaced (joined value is invalid) (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.echo', '{"input":1}', { headers: [rid('first'), rid('second')] }));
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
    ['on 401', taskReq('app.echo', '{}', { auth: false })],
    ['on 404 unknown task', taskReq('missing', '{}')],
    ['on 404 under the base path', { ...taskReq('x', '{}'), path: '/__runner/nope' }],
    ['not on 404 outside the base path', { ...taskReq('x', '{}'), path: '/nope' }],
    ['on 405', taskReq('app.echo', undefined, { method: 'GET' })],
    ['on 400', taskReq('app.echo', '{')],
    ['on 413', taskReq('app.echo', `{"input":"${'x'.repeat(300)}"}`)],
    ['on 500', taskReq('app.throwPlain', '')],
    ['on 499', taskReq('app.throwCancellation', '')],
    ['on events', eventReq('app.ev.wrap', '{"payload":1}')],
    ['on discovery', discoveryReq()],
    [
      'not on preflight',
      { method: 'OPTIONS', path: '/__runner/task/app.echo', headers: [['Origin', 'https://x.example']] },
    ],
  ];
  for (const [label, spec] of where) {
    it(`request id ${label}, client id kept (same answer as the reference)`, async () => {
      await sameAnswer(pair, { ...spec, headers: [...spec.headers, rid('where-test-1')] }, { label });
    });
    it(`request id ${label}, generated (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, { label });
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
    ],
    [
      'repeated unrelated header',
      taskReq('app.echo', '{"input":1}', {
        headers: [
          ['x-custom', 'a'],
          ['x-custom', 'b'],
        ],
      }),
    ],
    [
      'repeated x-runner-context header',
      taskReq('app.echo', '{"input":1}', {
        headers: [
          ['x-runner-context', '{}'],
          ['x-runner-context', '{}'],
        ],
      }),
    ],
    [
      'invalid x-runner-context header is ignored',
      taskReq('app.echo', '{"input":1}', { headers: [['x-runner-context', '{not json']] }),
    ],
    ['Connection: close', taskReq('app.echo', '{"input":1}', { headers: [['Connection', 'close']] })],
    ['Expect: 100-continue', taskReq('app.echo', '{"input":1}', { headers: [['Expect', '100-continue']] })],
    ['HTTP/1.0 request', { ...taskReq('app.echo', '{"input":1}'), httpVersion: '1.0' }],
    [
      'request without Host header on HTTP/1.0',
      { ...taskReq('app.echo', '{"input":1}'), httpVersion: '1.0', noHost: true },
    ],
  ];
  for (const [label, spec] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, { label });
    });
  }
});
