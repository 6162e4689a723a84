'use strict';

// What the HTTP layer answers when it refuses a request, with a handler watching: the status
// Node's server gives (408 for a head that comes too slowly, 400 for a body whose framing
// breaks or that the client cuts short), the connection closed, the handler told its request
// is gone, and the server serving the next connection as before.
const test = require('node:test');
const assert = require('node:assert/strict');
const { TunnelServer } = require('..');
const { sendUntilClose: exchange } = require('./helpers/raw-client');

async function withServer(options, fn) {
  const server = new TunnelServer({
    port: 0,
    auth: { allowAnonymous: true },
    logger: { error() {}, warn() {} },
    ...options,
  });
  const seen = { calls: 0, aborted: 0, readFailed: 0 };
  server.registerTask('upload', async (input, ctx) => {
    seen.calls++;
    ctx.signal.addEventListener('abort', () => seen.aborted++);
    try {
      for await (const chunk of ctx.req) void chunk;
    } catch {
      seen.readFailed++;
    }
    return 'read';
  });
  server.registerTask('ping', async () => 'pong');
  const { port, url } = await server.listen();
  try {
    await fn(port, seen);
    // Still serving.
    const res = await fetch(`${url}/__runner/task/ping`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.deepEqual(await res.json(), { ok: true, result: 'pong' });
  } finally {
    await server.close();
  }
}

const UPLOAD_CHUNKED =
  'POST /__runner/task/upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n';

test('a head that does not arrive within requestTimeout gets 408 and the connection closes (as Node answers a late head)', async () => {
  await withServer({ requestTimeout: 300 }, async (port, seen) => {
    const answer = await exchange(port, ['POST /__runner/task/upload HTTP/1.1\r\nhost: x\r\n']);
    assert.equal(answer, 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n');
    assert.equal(seen.calls, 0);
  });
});

test('a chunked body whose framing breaks mid-way gets 400, not 499, and the handler sees its request end', async () => {
  await withServer({}, async (port, seen) => {
    const answer = await exchange(port, [UPLOAD_CHUNKED + '3\r\nabc\r\n', '2 junk\r\nxy\r\n0\r\n\r\n']);
    assert.equal(answer, 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    assert.equal(seen.calls, 1);
    assert.equal(seen.readFailed, 1);
    assert.equal(seen.aborted, 1);
  });
});

test('too many chunk-extension bytes on one line get 413, as Node answers them', async () => {
  await withServer({}, async (port) => {
    const answer = await exchange(port, [UPLOAD_CHUNKED + `1;a=${'b'.repeat(17 * 1024)}\r\nx\r\n0\r\n\r\n`]);
    assert.equal(answer, 'HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\n\r\n');
  });
});

test('a client that half-closes in the middle of a body gets 400 (as Node and hyper answer it)', async () => {
  await withServer({}, async (port, seen) => {
    const head =
      'POST /__runner/task/upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 100\r\n\r\n';
    const answer = await exchange(port, [head + 'abc'], { end: true });
    assert.equal(answer, 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    assert.equal(seen.readFailed, 1);
  });
});

test('a client that half-closes in the middle of a head gets 400 (as Node answers it)', async () => {
  await withServer({}, async (port, seen) => {
    const answer = await exchange(port, ['POST /__runner/task/upload HTTP/1.1\r\nhost: x\r\n'], { end: true });
    assert.equal(answer, 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    assert.equal(seen.calls, 0);
  });
});
