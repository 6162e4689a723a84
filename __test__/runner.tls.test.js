'use strict';
// nativeExposure with http.tls: a Runner app served over HTTPS, reached by Runner's own
// clients (createHttpClient over fetch, and the Node smart client) trusting the test CA.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { nativeExposure } = require('../runner');
const { startRnApp, TOKEN } = require('./helpers/rn-app');
const { pem, serverTls, httpsRequest, runnerClients } = require('./helpers/tls');

describe('nativeExposure with http.tls', () => {
  let app;
  before(async () => {
    app = await startRnApp(nativeExposure, { auth: { token: TOKEN }, tls: serverTls() });
  });
  after(async () => app && app.close());

  it('its url and baseUrl are https://', () => {
    assert.match(app.value.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(app.value.baseUrl, `${app.value.url}/__runner`);
  });

  it("Runner's createHttpClient and createHttpSmartClient run a task over HTTPS", async () => {
    const out = await runnerClients({
      baseUrl: app.value.baseUrl,
      token: TOKEN,
      task: 'rn.add',
      input: { a: 2, b: 40 },
    });
    assert.deepEqual(out.client, { value: 42 });
    assert.deepEqual(out.smart, { value: 42 });
  });

  it('plain HTTP on its port gets no answer', async () => {
    const http = require('node:http');
    const outcome = await new Promise((resolve) => {
      const req = http.request(`http://127.0.0.1:${app.port}/__runner/task/rn.add`, { method: 'POST' }, (res) =>
        resolve(`answered ${res.statusCode}`),
      );
      req.on('error', (e) => resolve(e.code));
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.end('{}');
    });
    assert.match(outcome, /ECONNRESET|EPIPE|HPE_/);
  });

  it('a bad http.tls makes the app fail to start with ERR_TLS_CONFIG', async () => {
    await assert.rejects(
      startRnApp(nativeExposure, { auth: { token: TOKEN }, tls: { cert: pem('server.pem'), key: pem('other.key') } }),
      (e) => e.code === 'ERR_TLS_CONFIG' || e.cause?.code === 'ERR_TLS_CONFIG',
    );
  });

  it('a wrong http.tls type is a TypeError naming the field', async () => {
    await assert.rejects(
      startRnApp(nativeExposure, { auth: { token: TOKEN }, tls: { cert: pem('server.pem'), key: 12 } }),
      (e) => /"tls\.key"/.test(e.message) || /"tls\.key"/.test(e.cause?.message ?? ''),
    );
  });

  it('a direct https call with the CA is answered as nodeExposure answers', async () => {
    const r = await httpsRequest(`${app.value.baseUrl}/task/rn.add`, {
      headers: { 'content-type': 'application/json', 'x-runner-token': TOKEN },
      body: JSON.stringify({ input: { a: 1, b: 2 } }),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ok: true, result: 3 });
  });
});
