'use strict';

// requestTimeout: a request body that does not arrive in time. Node's http server (and so
// nodeExposure) answers such a request with 408 and closes the connection; its default
// limit is 300 s, which these tests shorten.
// keepAliveTimeout: an idle keep-alive connection is closed, as Node's http server does
// (default 5 s there and here).
const test = require('node:test');
const assert = require('node:assert/strict');
const { TunnelServer } = require('..');
const { sendUntilClose: exchange } = require('./helpers/raw-client');

test('requestTimeout: a stalled raw body gets 408, the handler sees the abort, the connection closes', async () => {
  const server = new TunnelServer({ port: 0, auth: { allowAnonymous: true }, requestTimeout: 300 });
  let signalAborted = false;
  let readFailed = null;
  const received = [];
  let settle;
  const handlerDone = new Promise((resolve) => {
    settle = resolve;
  });
  server.registerTask('upload', async (input, ctx) => {
    ctx.signal.addEventListener('abort', () => {
      signalAborted = true;
    });
    try {
      for await (const chunk of ctx.req) received.push(chunk);
    } catch (err) {
      readFailed = err;
    }
    settle();
    return { done: true };
  });
  const { port } = await server.listen();
  try {
    const answer = await exchange(
      port,
      'POST /__runner/task/upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n' +
        'content-length: 100000\r\n\r\nabc',
    );
    assert.match(answer, /^HTTP\/1\.1 408 /);
    await handlerDone;
    // The handler was running and had the bytes that did arrive (a body
    // this large is handed over as it comes).
    assert.equal(Buffer.concat(received).toString(), 'abc');
    assert.equal(signalAborted, true);
    assert.ok(readFailed instanceof Error, 'the body stream should fail');
  } finally {
    await server.close();
  }
});

test('requestTimeout: a stalled JSON body gets 408; a body in time is served', async () => {
  const server = new TunnelServer({ port: 0, auth: { allowAnonymous: true }, requestTimeout: 300 });
  server.registerTask('add', async (input) => ({ sum: input.a + input.b }));
  const { port, url } = await server.listen();
  try {
    const answer = await exchange(
      port,
      'POST /__runner/task/add HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
        'content-length: 30\r\n\r\n{"input":',
    );
    assert.match(answer, /^HTTP\/1\.1 408 /);
    const res = await fetch(`${url}/__runner/task/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { a: 1, b: 2 } }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, result: { sum: 3 } });
  } finally {
    await server.close();
  }
});

for (const option of ['requestTimeout', 'keepAliveTimeout']) {
  test(`${option} must be a non-negative integer of milliseconds`, () => {
    for (const bad of [-1, 1.5, '300', null]) {
      assert.throws(
        () => new TunnelServer({ port: 0, [option]: bad }),
        (err) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, new RegExp(option));
          return true;
        },
      );
    }
    assert.doesNotThrow(() => new TunnelServer({ port: 0, [option]: 0 }));
  });
}

test('keepAliveTimeout: an idle keep-alive connection is closed after its answer', async () => {
  const server = new TunnelServer({ port: 0, auth: { allowAnonymous: true }, keepAliveTimeout: 300 });
  server.registerTask('add', async ({ a, b }) => a + b);
  const { port } = await server.listen();
  try {
    // The request asks for keep-alive; the connection still closes once idle.
    const body = '{"input":{"a":1,"b":2}}';
    const answer = await exchange(
      port,
      'POST /__runner/task/add HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n' +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /\{"ok":true,"result":3\}$/);
  } finally {
    await server.close();
  }
});
