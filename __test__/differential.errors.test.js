'use strict';
// Status codes and error answers (createTaskHandler / createEventHandler / handleRequestError /
// sanitizeErrorResponse / readJsonBody limits), compared with Runner's nodeExposure.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startPair, sameAnswer, rawRequest, allHandlers, taskReq, eventReq, discoveryReq, TOKEN } = require('./helpers');

const AUTH = { token: TOKEN };

describe('handler failures and result encoding (taken from the reference handleRequestError)', () => {
  for (const serializer of ['json', 'runner']) {
    describe(`with ${serializer === 'json' ? 'plain JSON' : "Runner's Serializer"} on both sides`, () => {
      let pair;
      before(async () => {
        pair = await startPair(allHandlers(), { auth: AUTH, serializer });
      });
      after(async () => pair && pair.close());

      // Runner's Serializer writes a BigInt but refuses a function; JSON.stringify the other way round.
      const byMode = (json, runner) => (serializer === 'json' ? json : runner);
      const cases = [
        ['plain Error -> 500 Internal Error without details', taskReq('app.throwPlain', ''), '500 INTERNAL_ERROR'],
        ['thrown string -> 500 Internal Error', taskReq('app.throwString', ''), '500 INTERNAL_ERROR'],
        ['thrown undefined -> 500 Internal Error', taskReq('app.throwUndefined', ''), '500 INTERNAL_ERROR'],
        [
          'typed error with httpCode 418 -> 418 with message/id/data/httpCode',
          taskReq('app.throwTeapot', ''),
          '418 INTERNAL_ERROR',
        ],
        [
          'typed error with httpCode 400 and nested data',
          taskReq('app.throwBadRequest', '{"input":[1,"two"]}'),
          '400 INTERNAL_ERROR',
        ],
        [
          'typed error without httpCode -> 500 with message/id/data',
          taskReq('app.throwNoHttpCode', ''),
          '500 INTERNAL_ERROR',
        ],
        [
          'typed error with httpCode 500 -> 500 with httpCode',
          taskReq('app.throwExplicit500', ''),
          '500 INTERNAL_ERROR',
        ],
        [
          'typed error with remediation keeps the full message',
          taskReq('app.throwRemediation', ''),
          '422 INTERNAL_ERROR',
        ],
        [
          'cancellation thrown by the task -> 499 REQUEST_ABORTED',
          taskReq('app.throwCancellation', ''),
          '499 REQUEST_ABORTED',
        ],
        ['typed error thrown by an event hook', eventReq('app.ev.throwTeapot', '{"payload":1}'), '418 INTERNAL_ERROR'],
        [
          'plain error thrown by an event hook -> 500',
          eventReq('app.ev.throwPlain', '{"payload":1,"returnPayload":true}'),
          '500 INTERNAL_ERROR',
        ],
        [
          'cancellation thrown by an event hook -> 499',
          eventReq('app.ev.throwCancellation', '{"payload":1}'),
          '499 REQUEST_ABORTED',
        ],
        ['handler returning undefined', taskReq('app.returnUndefined', ''), '200'],
        ['handler returning null', taskReq('app.returnNull', ''), '200'],
        ['handler returning a cyclic object -> 500', taskReq('app.returnCyclic', ''), '500 INTERNAL_ERROR'],
        [
          'handler returning a function property',
          taskReq('app.returnFunction', ''),
          byMode('200', '500 INTERNAL_ERROR'),
        ],
        ['handler returning a Date', taskReq('app.returnDate', ''), '200'],
        ['handler returning a string with quotes, non-ASCII and U+2028', taskReq('app.returnString', ''), '200'],
        ['handler returning a BigInt', taskReq('app.returnBigInt', ''), byMode('500 INTERNAL_ERROR', '200')],
        ['handler returning a 1 MiB result', taskReq('app.returnLarge', ''), '200'],
        [
          'typed error with non-ASCII data and message',
          taskReq('app.throwBadRequest', '{"input":"ünïcödé 😀 \\u2028"}'),
          '400 INTERNAL_ERROR',
        ],
        [
          'thrown plain object shaped like a typed error -> 500 Internal Error',
          taskReq('app.throwTypedLikeObject', ''),
          '500 INTERNAL_ERROR',
        ],
        [
          'plain Error carrying own data -> 500 Internal Error, nothing leaked',
          taskReq('app.throwErrorWithData', ''),
          '500 INTERNAL_ERROR',
        ],
        [
          'TypeError carrying data and httpCode -> 500 Internal Error, nothing leaked',
          taskReq('app.throwTypeErrorWithData', ''),
          '500 INTERNAL_ERROR',
        ],
        [
          'plain Error carrying only an httpCode -> 500 Internal Error',
          taskReq('app.throwErrorWithHttpCode', ''),
          '500 INTERNAL_ERROR',
        ],
      ];
      for (const [label, spec, expected] of cases) {
        it(`${label} (same answer as the reference)`, async () => {
          await sameAnswer(pair, spec, expected, { label });
        });
      }

      it('the server keeps serving after a result that could not be serialized (same answers as the reference)', async () => {
        for (let i = 0; i < 3; i += 1) {
          await sameAnswer(pair, taskReq('app.returnBigInt', ''), byMode('500 INTERNAL_ERROR', '200'));
          await sameAnswer(pair, taskReq('app.returnCyclic', ''), '500 INTERNAL_ERROR');
          const { nat } = await sameAnswer(pair, taskReq('app.echo', `{"input":${i}}`), '200');
          assert.equal(nat.status, 200);
        }
      });
    });
  }
});

describe('400 INVALID_JSON and 404 NOT_FOUND (taken from the reference)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());
  const cases = [
    ['invalid JSON on a task -> 400', taskReq('app.echo', '{oops'), '400 INVALID_JSON'],
    ['invalid JSON on an event -> 400', eventReq('app.ev.wrap', '[1,'), '400 INVALID_JSON'],
    [
      'invalid JSON on an unknown task -> 404 (existence checked before the body)',
      taskReq('missing.task', '{oops'),
      '404 NOT_FOUND',
    ],
    ['unknown task -> 404 Task {id} not found', taskReq('missing.task', '{"input":1}'), '404 NOT_FOUND'],
    ['unknown event -> 404 Event {id} not found', eventReq('missing.event', '{"payload":1}'), '404 NOT_FOUND'],
    [
      'unknown route under the base -> 404 Not Found',
      { ...taskReq('x', '{}'), path: '/__runner/nothing/here' },
      '404 NOT_FOUND',
    ],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});

describe('405 METHOD_NOT_ALLOWED for every wrong method (taken from the reference)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());
  const wrongForTaskOrEvent = ['GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'TRACE'];
  // A HEAD answer has no body to read the code from.
  const notAllowed = (method) => (method === 'HEAD' ? '405' : '405 METHOD_NOT_ALLOWED');
  for (const method of wrongForTaskOrEvent) {
    it(`${method} on a task -> 405 (same answer as the reference)`, async () => {
      await sameAnswer(pair, taskReq('app.echo', undefined, { method }), notAllowed(method));
    });
    if (['PUT', 'DELETE', 'PATCH'].includes(method)) {
      it(`${method} on a task with a body -> 405 (same answer as the reference)`, async () => {
        await sameAnswer(pair, taskReq('app.echo', '{"input":1}', { method }), notAllowed(method));
      });
    }
    it(`${method} on an unknown task -> 405 before the existence check (same answer as the reference)`, async () => {
      await sameAnswer(pair, taskReq('missing.task', undefined, { method }), notAllowed(method));
    });
    it(`${method} on a task without a token -> 405 before auth (same answer as the reference)`, async () => {
      await sameAnswer(pair, taskReq('app.echo', undefined, { method, auth: false }), notAllowed(method));
    });
    it(`${method} on an event -> 405 (same answer as the reference)`, async () => {
      await sameAnswer(pair, eventReq('app.ev.wrap', undefined, { method }), notAllowed(method));
    });
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'TRACE']) {
    it(`${method} on discovery -> 405 (same answer as the reference)`, async () => {
      await sameAnswer(
        pair,
        {
          ...discoveryReq({ method }),
          ...(method === 'POST' || method === 'PUT' || method === 'PATCH' ? { body: '{}' } : {}),
        },
        notAllowed(method),
      );
    });
    it(`${method} on discovery without a token -> 405 before auth (same answer as the reference)`, async () => {
      await sameAnswer(pair, discoveryReq({ method, auth: false }), notAllowed(method));
    });
  }
});

describe('413 PAYLOAD_TOO_LARGE (taken from the reference readRequestBody)', () => {
  const LIMIT = 1024;
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, limits: { json: { maxSize: LIMIT } } });
  });
  after(async () => pair && pair.close());

  const jsonOfSize = (n) => {
    const prefix = '{"input":"';
    const suffix = '"}';
    return prefix + 'x'.repeat(n - prefix.length - suffix.length) + suffix;
  };

  it('body of exactly the limit is accepted (same answer as the reference)', async () => {
    const body = jsonOfSize(LIMIT);
    assert.equal(Buffer.byteLength(body), LIMIT);
    const { nat } = await sameAnswer(pair, taskReq('app.length', body), '200');
    assert.equal(nat.status, 200);
  });
  it('body one byte over the limit, sent at once -> 413 (same answer as the reference)', async () => {
    const { nat } = await sameAnswer(pair, taskReq('app.length', jsonOfSize(LIMIT + 1)), '413 PAYLOAD_TOO_LARGE');
    assert.equal(nat.status, 413);
  });
  it('large body (64 KiB) sent at once -> 413 (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.length', jsonOfSize(64 * 1024)), '413 PAYLOAD_TOO_LARGE');
  });
  it('oversized body sent slowly with chunked encoding -> 413 while the client is still sending (same answer as the reference)', async () => {
    const chunks = Array.from({ length: 40 }, () => 'x'.repeat(100));
    const spec = {
      ...taskReq('app.length', undefined),
      chunked: true,
      chunks: ['{"input":"', ...chunks, '"}'],
      chunkDelayMs: 15,
    };
    const { nat } = await sameAnswer(pair, spec, '413 PAYLOAD_TOO_LARGE');
    assert.equal(nat.status, 413);
  });
  it('oversized chunked body that never ends -> 413 anyway (same answer as the reference)', async () => {
    const chunks = Array.from({ length: 20 }, () => 'y'.repeat(100));
    const spec = { ...taskReq('app.length', undefined), chunked: true, chunks, chunkDelayMs: 5, noFinalChunk: true };
    await sameAnswer(pair, spec, '413 PAYLOAD_TOO_LARGE');
  });
  it('oversized body on an event -> 413 (same answer as the reference)', async () => {
    await sameAnswer(pair, eventReq('app.ev.wrap', `{"payload":"${'z'.repeat(2000)}"}`), '413 PAYLOAD_TOO_LARGE');
  });
  it('the limit counts bytes, not characters (same answer as the reference)', async () => {
    const body = `{"input":"${'é'.repeat(600)}"}`; // 612 characters, 1212 bytes
    assert.ok(body.length < LIMIT && Buffer.byteLength(body) > LIMIT);
    const { nat } = await sameAnswer(pair, taskReq('app.length', body), '413 PAYLOAD_TOO_LARGE');
    assert.equal(nat.status, 413);
  });
  it('invalid JSON under the limit is still 400 (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.length', '{"input":'), '400 INVALID_JSON');
  });
  it('the server keeps serving after a 413 (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.length', jsonOfSize(5000)), '413 PAYLOAD_TOO_LARGE');
    const { nat } = await sameAnswer(pair, taskReq('app.length', '{"input":"ok"}'), '200');
    assert.equal(nat.status, 200);
  });
});

describe('413 with the default 2 MiB limit (taken from the reference)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());
  it('2 MiB body is accepted, 2 MiB + 1 is refused (same answers as the reference)', async () => {
    const make = (n) => `{"input":"${'a'.repeat(n - 12)}"}`;
    const ok = make(2 * 1024 * 1024);
    assert.equal(Buffer.byteLength(ok), 2 * 1024 * 1024);
    const small = await sameAnswer(pair, taskReq('app.depth', ok), '200');
    assert.equal(small.nat.status, 200);
    const big = await sameAnswer(pair, taskReq('app.depth', make(2 * 1024 * 1024 + 1)), '413 PAYLOAD_TOO_LARGE');
    assert.equal(big.nat.status, 413);
  });
});

describe('early answers while a large body is still being sent are delivered (taken from the reference: Node keeps reading the request after answering)', () => {
  // The whole request (head + 4 MB body) is written at once; the server answers before reading
  // the body. The client must receive that answer (not a reset connection / EPIPE).
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, limits: { json: { maxSize: 1024 * 1024 } } });
  });
  after(async () => pair && pair.close());
  const big = `{"input":"${'x'.repeat(4 * 1024 * 1024)}"}`;
  const cases = [
    ['413 for a 4 MB body over a 1 MiB limit', taskReq('app.echo', big), '413 PAYLOAD_TOO_LARGE'],
    ['413 for a 4 MB event body', eventReq('app.ev.wrap', big), '413 PAYLOAD_TOO_LARGE'],
    [
      '401 for a 4 MB body without token (auth before body)',
      taskReq('app.echo', big, { auth: false }),
      '401 UNAUTHORIZED',
    ],
    ['404 for a 4 MB body to an unknown task', taskReq('missing.task', big), '404 NOT_FOUND'],
    ['405 for a 4 MB PUT', taskReq('app.echo', big, { method: 'PUT' }), '405 METHOD_NOT_ALLOWED'],
    ['404 for a 4 MB body outside the base path', { ...taskReq('x', big), path: '/elsewhere' }, '404 NOT_FOUND'],
  ];
  // Whether the answer survives depends on timing, so each case is tried 5 times on fresh
  // connections; the reference delivers the answer every time.
  for (const [label, spec, expected] of cases) {
    it(`${label}, 5 times (same answers as the reference)`, async () => {
      for (let i = 0; i < 5; i += 1) await sameAnswer(pair, spec, expected, { label: `${label}, attempt ${i + 1}` });
    });
  }
});

describe('error answers are complete JSON documents', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());
  it('native 500 body parses and carries no stack, cause or sql', async () => {
    const res = await rawRequest(pair.nat, taskReq('app.throwPlain', ''));
    assert.equal(res.status, 500);
    const body = res.json();
    assert.deepEqual(body, { ok: false, error: { message: 'Internal Error', code: 'INTERNAL_ERROR' } });
    assert.doesNotMatch(res.text, /secret detail|SELECT|stack/);
  });
});

describe('limits.json.maxSize 0 (taken from the reference: any non-empty body is too large)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, limits: { json: { maxSize: 0 } } });
  });
  after(async () => pair && pair.close());
  it('empty body is accepted (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.describe', ''), '200');
  });
  it('one-byte body -> 413 (same answer as the reference)', async () => {
    await sameAnswer(pair, taskReq('app.describe', '1'), '413 PAYLOAD_TOO_LARGE');
  });
});

describe('a custom serializer is used for every JSON answer (taken from the reference respondJson)', () => {
  const pretty = {
    parse: (text) => JSON.parse(text),
    stringify: (value) => JSON.stringify(value, null, 2),
  };
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, serializer: pretty, limits: { json: { maxSize: 64 } } });
  });
  after(async () => pair && pair.close());
  const cases = [
    ['200 task result', taskReq('app.echo', '{"input":{"a":[1,2]}}'), '200'],
    ['200 event without result', eventReq('app.ev.wrap', '{"payload":1}'), '200'],
    ['200 event with result', eventReq('app.ev.wrap', '{"payload":1,"returnPayload":true}'), '200'],
    ['200 discovery', discoveryReq(), '200'],
    ['400 invalid JSON', taskReq('app.echo', '{'), '400 INVALID_JSON'],
    ['401', taskReq('app.echo', '{}', { auth: false }), '401 UNAUTHORIZED'],
    ['404 unknown task', taskReq('missing', '{}'), '404 NOT_FOUND'],
    ['404 under the base path', { ...taskReq('x', '{}'), path: '/__runner/nothing' }, '404 NOT_FOUND'],
    ['404 outside the base path', { ...taskReq('x', '{}'), path: '/nothing' }, '404 NOT_FOUND'],
    ['405', taskReq('app.echo', undefined, { method: 'GET' }), '405 METHOD_NOT_ALLOWED'],
    ['413', taskReq('app.echo', `{"input":"${'x'.repeat(100)}"}`), '413 PAYLOAD_TOO_LARGE'],
    ['418 typed error', taskReq('app.throwTeapot', ''), '418 INTERNAL_ERROR'],
    ['499 cancellation', taskReq('app.throwCancellation', ''), '499 REQUEST_ABORTED'],
    ['500 plain error', taskReq('app.throwPlain', ''), '500 INTERNAL_ERROR'],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});

describe('a serializer whose parse throws on some input -> 400; whose stringify throws -> 500 (taken from the reference)', () => {
  const picky = {
    parse: (text) => {
      const v = JSON.parse(text);
      if (v && v.input === 'reject me') throw new Error('parse refused');
      return v;
    },
    stringify: (value) => {
      if (value && value.result === 'cannot encode') throw new Error('stringify refused');
      return JSON.stringify(value);
    },
  };
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH, serializer: picky });
  });
  after(async () => pair && pair.close());
  const cases = [
    ['parse throws -> 400 INVALID_JSON', taskReq('app.echo', '{"input":"reject me"}'), '400 INVALID_JSON'],
    ['stringify throws on the result -> 500', taskReq('app.echo', '{"input":"cannot encode"}'), '500 INTERNAL_ERROR'],
    ['still fine otherwise', taskReq('app.echo', '{"input":"fine"}'), '200'],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});
