'use strict';
// The answer bodies JS writes are the native side's (src/core/envelope.rs, exported
// through native.js): what the server sends equals the exported text, on its own and
// through a user serializer.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const native = require('../native.js');
const { loadNative, silentLogger, request, TOKEN } = require('./helpers');

const spaced = { parse: JSON.parse, stringify: (v) => JSON.stringify(v, null, 1) };

function startServer(opts = {}) {
  const { TunnelServer } = loadNative();
  const server = new TunnelServer({
    port: 0,
    host: '127.0.0.1',
    auth: { token: TOKEN },
    logger: silentLogger(),
    ...opts,
  });
  server.registerTask('env.result', async () => ({ a: [1, 'x'] }));
  server.registerTask('env.empty', async () => undefined);
  server.registerTask('env.throws', async () => {
    throw new Error('boom');
  });
  return server;
}

const call = (url, id, body, kind = 'task') =>
  request(`${url}/__runner/${kind}/${encodeURIComponent(id)}`, {
    headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
    body,
  });

for (const [name, serializer, write] of [
  ['plain JSON', undefined, (text) => text],
  ['a user serializer', spaced, (text) => spaced.stringify(JSON.parse(text))],
]) {
  describe(`the exported envelopes are the answers sent, with ${name}`, () => {
    let server;
    let url;
    before(async () => {
      server = startServer(serializer ? { serializer } : {});
      url = (await server.listen()).url;
    });
    after(async () => server && server.close());

    it('a result is OK_RESULT_PREFIX, its JSON, OK_RESULT_SUFFIX; no result is OK_EMPTY', async () => {
      const text = native.OK_RESULT_PREFIX + JSON.stringify({ a: [1, 'x'] }) + native.OK_RESULT_SUFFIX;
      assert.equal((await call(url, 'env.result', '{"input":1}')).text, write(text));
      assert.equal((await call(url, 'env.empty', '{}')).text, write(native.OK_EMPTY));
    });

    it('a body that does not parse is 400 INVALID_JSON_BODY; a plain error is 500 INTERNAL_BODY', async () => {
      const invalid = await call(url, 'env.result', '{not json');
      assert.equal(invalid.status, 400);
      assert.equal(invalid.text, write(native.INVALID_JSON_BODY));
      const failed = await call(url, 'env.throws', '{}');
      assert.equal(failed.status, 500);
      assert.equal(failed.text, write(native.INTERNAL_BODY));
    });

    it('an unknown id is answered with notFoundMessage and NOT_FOUND_CODE', async () => {
      const res = await call(url, 'env.nope', '{}');
      assert.equal(res.status, 404);
      const error = { message: native.notFoundMessage(native.KIND_TASK, 'env.nope'), code: native.NOT_FOUND_CODE };
      assert.equal(res.text, write(JSON.stringify({ ok: false, error })));
    });
  });
}

describe('a call whose handler is unregistered after the native lookup', () => {
  // An id with a lone surrogate: the native side knows it as U+FFFD, JS as it was
  // registered, and JS's answer names it as JS has it.
  const id = 'env.gone.\ud800';
  let server;
  let port;
  before(async () => {
    server = startServer();
    port = (await server.listen()).port;
  });
  after(async () => server && server.close());

  const rawCall = (path) =>
    `POST ${path} HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\ncontent-type: application/json\r\n` +
    'content-length: 2\r\nconnection: close\r\n\r\n{}';

  it('is 404 with the message JS builds, byte for byte as before', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    server.registerTask(id, async () => 'never');
    server.registerTask('env.block', () => {
      // The JS thread is busy here: the call below is looked up natively (still
      // registered), queued, and reaches JS after its handler is gone.
      socket.write(rawCall(`/__runner/task/${encodeURIComponent('env.gone.\ufffd')}`));
      const until = Date.now() + 300;
      while (Date.now() < until);
      server.unregisterTask(id);
      return 'blocked';
    });
    assert.equal((await call(`http://127.0.0.1:${port}`, 'env.block', '{}')).text, '{"ok":true,"result":"blocked"}');
    await closed;
    const answer = Buffer.concat(chunks).toString('utf8');
    assert.match(answer, /^HTTP\/1\.1 404 /);
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    assert.equal(body, '{"ok":false,"error":{"message":"Task env.gone.\\ud800 not found","code":"NOT_FOUND"}}');
  });
});

describe('mapError: what a handler throws is answered as the error it maps to', () => {
  let server;
  let url;
  const seen = [];
  before(async () => {
    const { ProtocolError } = loadNative();
    server = startServer({
      mapError: (err, call) => {
        seen.push(call);
        if (err.message === 'boom') return new ProtocolError(418, 'TEAPOT', 'short and stout', { at: call.id });
        throw new ProtocolError(409, 'FROM_THROW', 'mapped by throwing');
      },
    });
    server.registerEvent('env.event.throws', async () => {
      throw new Error('other');
    });
    ({ url } = await server.listen());
  });
  after(() => server.close());

  it('a returned ProtocolError is the answer, and the call is described', async () => {
    const res = await call(url, 'env.throws', '{"input":1}');
    assert.equal(res.status, 418);
    assert.equal(res.text, '{"ok":false,"error":{"message":"short and stout","code":"TEAPOT","at":"env.throws"}}');
    assert.equal(seen[0].kind, 'task');
    assert.equal(seen[0].id, 'env.throws');
    assert.match(seen[0].requestId, /\S/);
  });

  it('a thrown one is the answer too; successes never reach it', async () => {
    const res = await call(url, 'env.event.throws', '{"payload":1}', 'event');
    assert.equal(res.status, 409);
    assert.match(res.text, /"code":"FROM_THROW"/);
    assert.equal(seen.at(-1).kind, 'event');
    const before = seen.length;
    assert.equal((await call(url, 'env.result', '{}')).status, 200);
    assert.equal(seen.length, before);
  });
});

describe("Runner's Serializer on the JSON fast path: a result whose check throws", () => {
  let server;
  let url;
  before(async () => {
    const { Serializer } = require('@bluelibs/runner');
    server = startServer({ serializer: new Serializer() });
    server.registerTask('env.getter', async () => ({
      get boom() {
        throw new Error('getter');
      },
    }));
    ({ url } = await server.listen());
  });
  after(() => server.close());

  it('is a 500 (as when the Serializer throws), and the server keeps serving', async () => {
    const res = await call(url, 'env.getter', '{}');
    assert.equal(res.status, 500);
    const ok = await call(url, 'env.result', '{}');
    assert.equal(ok.status, 200);
    assert.equal(ok.text, '{"ok":true,"result":{"a":[1,"x"]}}');
  });
});
