'use strict';
// The options and the allow-list cross to the native side as values, not JSON text:
// what the native side reads of them is what it read of their JSON text.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { loadNative, silentLogger, request, rawRequest, discoveryReq, TOKEN } = require('./helpers');

async function withServer(opts, fn) {
  const { TunnelServer } = loadNative();
  const server = new TunnelServer({
    port: 0,
    host: '127.0.0.1',
    auth: { token: TOKEN },
    logger: silentLogger(),
    ...opts,
  });
  try {
    const { url } = await server.listen();
    await fn(server, url);
  } finally {
    await server.close();
  }
}

const preflight = (url) =>
  request(`${url}/__runner/task/a`, {
    method: 'OPTIONS',
    headers: { origin: 'https://a', 'access-control-request-method': 'POST' },
  });

describe('options and the allow-list as values', () => {
  // As the native side has always written them (src/core/cors.rs js_number_to_string):
  // past 2^63 and from 1e21 on that is not how JS writes the number.
  for (const [maxAge, header] of [
    [600, '600'],
    [1.5, '1.5'],
    [5e9, '5000000000'],
    [12345678901234567890, '9223372036854775807'],
    [1e21, '1000000000000000000000'],
  ]) {
    it(`cors.maxAge ${maxAge} is sent as ${header}`, async () => {
      await withServer({ cors: { origin: 'https://a', maxAge } }, async (_server, url) => {
        assert.equal((await preflight(url)).headers['access-control-max-age'], header);
      });
    });
  }

  it('whole numbers above 2^32 are taken (limits.json.maxSize, requestTimeout)', async () => {
    await withServer({ limits: { json: { maxSize: 5e9 } }, requestTimeout: 5e9 }, async (server, url) => {
      server.registerTask('a', async (input) => input);
      const res = await request(`${url}/__runner/task/a`, {
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
        body: '{"input":7}',
      });
      assert.equal(res.text, '{"ok":true,"result":7}');
    });
  });

  it('an allow-list is read without the holes of its arrays', async () => {
    await withServer({}, async (server, url) => {
      server.registerTask('a', async () => 1);
      server.registerTask('b', async () => 2);
      // eslint-disable-next-line no-sparse-arrays
      server.setAllowList({ enabled: true, tasks: [, 'a'], events: [] });
      const listed = (await rawRequest(url, discoveryReq())).json().result.allowList;
      assert.deepEqual(listed, { enabled: true, tasks: ['a'], events: [] });
      server.setAllowList(null);
      const all = (await rawRequest(url, discoveryReq())).json().result.allowList;
      assert.deepEqual(all, { enabled: true, tasks: ['a', 'b'], events: [] });
    });
  });

  it('a lone surrogate in the options or the allow-list is refused, as in JSON text', () => {
    const { TunnelServer } = loadNative();
    const refused = { name: 'Error', code: 'InvalidArg' };
    assert.throws(() => new TunnelServer({ auth: { token: 'a\ud800' } }), refused);
    assert.throws(() => new TunnelServer({ cors: { origin: ['\udc00'] } }), refused);
    const server = new TunnelServer({ auth: { token: 'a\ud83d\ude00' } });
    assert.throws(() => server.setAllowList({ enabled: true, tasks: ['x\ud800'] }), refused);
    server.setAllowList({ enabled: true, tasks: ['\ud83d\ude00'] });
  });
});
