'use strict';

// Refused requests are logged as the reference logs them: logger.warn('exposure.auth.failure',
// { requestId, method, path, status, code }).
const test = require('node:test');
const assert = require('node:assert/strict');
const { TunnelServer } = require('..');
const { TOKEN } = require('./helpers/fixtures');

test('an auth refusal is logged as exposure.auth.failure with the request facts (as the reference)', async () => {
  const warnings = [];
  const server = new TunnelServer({
    port: 0,
    auth: { token: TOKEN },
    logger: { error() {}, warn: (message, data) => warnings.push({ message, data }) },
  });
  server.registerTask('app.add', async () => 1);
  const { url } = await server.listen();
  try {
    const refused = await fetch(`${url}/__runner/task/app.add`, {
      method: 'POST',
      headers: { 'x-runner-request-id': 'audit-1' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    const allowed = await fetch(`${url}/__runner/task/app.add`, {
      method: 'POST',
      headers: { 'x-runner-token': TOKEN },
      body: '{}',
    });
    assert.equal(allowed.status, 200);
    for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(warnings, [
      {
        message: 'exposure.auth.failure',
        data: {
          requestId: 'audit-1',
          method: 'POST',
          path: '/__runner/task/app.add',
          status: 401,
          code: 'UNAUTHORIZED',
        },
      },
    ]);
  } finally {
    await server.close();
  }
});

test('a logger without warn is fine: refusals are answered and nothing throws', async () => {
  const server = new TunnelServer({ port: 0, logger: { error() {} } });
  const { url } = await server.listen();
  try {
    const res = await fetch(`${url}/__runner/discovery`);
    assert.equal(res.status, 500);
    assert.equal((await res.json()).error.code, 'AUTH_NOT_CONFIGURED');
  } finally {
    await server.close();
  }
});

test('listen binds IPv6 hosts, bare or bracketed, and reports a bracketed url', async () => {
  for (const host of ['::1', '[::1]']) {
    const server = new TunnelServer({ port: 0, host, auth: { allowAnonymous: true } });
    const { url } = await server.listen();
    try {
      assert.match(url, /^http:\/\/\[::1\]:\d+$/);
      const res = await fetch(`${url}/__runner/discovery`);
      assert.equal(res.status, 200);
    } finally {
      await server.close();
    }
  }
});
