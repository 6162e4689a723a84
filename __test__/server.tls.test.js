'use strict';
// The `tls` option over real sockets: HTTPS on the server's port, client certificates,
// refusals of what is not TLS, TLS configuration errors at listen(), option types, and
// the connection driver's streaming and disconnect handling over TLS.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const crypto = require('node:crypto');
const { Readable } = require('node:stream');
const { TunnelServer } = require('..');
const { pem, serverTls, httpsRequest, runnerClients, PASSPHRASE } = require('./helpers/tls');

const TOKEN = 'tls-token';
const JSON_HEADERS = { 'content-type': 'application/json', 'x-runner-token': TOKEN };
const silent = { error() {}, warn() {} };

const call = (url, id, input, options = {}) =>
  httpsRequest(`${url}/__runner/task/${id}`, { headers: JSON_HEADERS, body: JSON.stringify({ input }), ...options });

async function started(options = {}, register = () => {}) {
  const server = new TunnelServer({ auth: { token: TOKEN }, logger: silent, tls: serverTls(), ...options });
  server.registerTask('tls.add', async ({ a, b }) => ({ sum: a + b }));
  register(server);
  const address = await server.listen();
  return { server, ...address };
}

const deferred = () => {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
};

const withTimeout = (promise, ms, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref()),
  ]);

/** Resolves when the socket closes; with whatever it received. */
const closed = (socket) =>
  new Promise((resolve) => {
    const got = [];
    socket.on('data', (d) => got.push(d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(got)));
  });

describe('HTTPS with the tls option', () => {
  let srv;
  before(async () => {
    srv = await started();
  });
  after(() => srv.server.close());

  it('listen() gives an https:// url', () => {
    assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(srv.server.address().url, srv.url);
  });

  it("a task call over Node's https, trusting the test CA, is answered", async () => {
    const r = await call(srv.url, 'tls.add', { a: 2, b: 40 });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ok: true, result: { sum: 42 } });
  });

  it('the certificate is for localhost too, and ALPN picks http/1.1', async () => {
    const socket = tls.connect({
      host: 'localhost',
      port: srv.port,
      ca: pem('ca.pem'),
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    assert.equal(socket.authorized, true);
    assert.equal(socket.alpnProtocol, 'http/1.1');
    socket.destroy();
  });

  it('a client that does not trust the CA refuses the server', async () => {
    await assert.rejects(call(srv.url, 'tls.add', { a: 1, b: 1 }, { ca: null }), (e) => {
      assert.match(e.code, /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
      return true;
    });
  });

  it("fetch, Runner's createHttpClient and its Node smart client reach it trusting the CA", async () => {
    const out = await runnerClients({
      baseUrl: `${srv.url}/__runner`,
      token: TOKEN,
      task: 'tls.add',
      input: { a: 20, b: 22 },
    });
    assert.deepEqual(out.fetched, { value: '{"ok":true,"result":{"sum":42}}' });
    assert.deepEqual(out.client, { value: { sum: 42 } });
    assert.deepEqual(out.smart, { value: { sum: 42 } });
  });

  it('the same clients without the CA are refused (so the CA is what let them in)', async () => {
    const out = await runnerClients({
      baseUrl: `${srv.url}/__runner`,
      token: TOKEN,
      task: 'tls.add',
      input: { a: 1, b: 1 },
      trustCa: false,
    });
    for (const which of ['fetched', 'client', 'smart']) assert.ok(out[which].error, `${which}: ${JSON.stringify(out)}`);
  });

  it('pipelined requests in one TLS write, and a body larger than a TLS record, are served whole', async () => {
    // Plaintext waits inside the TLS session while the socket has nothing more to read.
    srv.server.registerTask('tls.len', async (input) => ({ length: input.text.length }));
    const big = JSON.stringify({ input: { text: 'x'.repeat(100 * 1024) } });
    const small = JSON.stringify({ input: { a: 1, b: 2 } });
    const head = (path, body, last) =>
      `POST /__runner/task/${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n` +
      `x-runner-token: ${TOKEN}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${last ? 'connection: close\r\n' : ''}\r\n${body}`;
    const socket = tls.connect({ host: '127.0.0.1', port: srv.port, ca: pem('ca.pem'), servername: 'localhost' });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const all = closed(socket);
    socket.write(head('tls.add', small) + head('tls.len', big) + head('tls.add', small, true));
    const text = (await withTimeout(all, 5000, 'three answers')).toString('latin1');
    const bodies = text.split(/(?=HTTP\/1\.1 )/).map((answer) => answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(bodies, [
      '{"ok":true,"result":{"sum":3}}',
      `{"ok":true,"result":{"length":${100 * 1024}}}`,
      '{"ok":true,"result":{"sum":3}}',
    ]);
  });

  it('a streamed answer and a streamed request body go through whole', async () => {
    const total = 3 * 1024 * 1024;
    const chunk = crypto.randomBytes(64 * 1024);
    srv.server.registerTask('tls.stream', async () =>
      Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
        })(),
      ),
    );
    const r = await httpsRequest(`${srv.url}/__runner/task/tls.stream`, { headers: JSON_HEADERS, body: '{}' });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, total);
    assert.ok(r.body.subarray(0, chunk.length).equals(chunk) && r.body.subarray(total - chunk.length).equals(chunk));

    srv.server.registerTask('tls.count', async (input, ctx) => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      for await (const c of ctx.req) {
        bytes += c.length;
        hash.update(c);
      }
      return { bytes, sha256: hash.digest('hex') };
    });
    const upload = crypto.randomBytes(2 * 1024 * 1024 + 17);
    const u = await httpsRequest(`${srv.url}/__runner/task/tls.count`, {
      headers: { 'content-type': 'application/octet-stream', 'x-runner-token': TOKEN },
      body: upload,
    });
    assert.equal(u.status, 200);
    assert.deepEqual(JSON.parse(u.body).result, {
      bytes: upload.length,
      sha256: crypto.createHash('sha256').update(upload).digest('hex'),
    });
  });

  it('a client that goes away mid-call aborts ctx.signal', async () => {
    const entered = deferred();
    const aborted = deferred();
    srv.server.registerTask('tls.hang', (input, ctx) => {
      entered.resolve();
      ctx.signal.addEventListener('abort', () => aborted.resolve(true));
      return new Promise(() => {});
    });
    const socket = tls.connect({ host: '127.0.0.1', port: srv.port, ca: pem('ca.pem'), servername: 'localhost' });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.on('error', () => {});
    const body = '{"input":{}}';
    socket.write(
      `POST /__runner/task/tls.hang HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n` +
        `x-runner-token: ${TOKEN}\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    await withTimeout(entered.promise, 5000, 'handler started');
    socket.destroy();
    assert.equal(await withTimeout(aborted.promise, 5000, 'ctx.signal aborted'), true);
  });

  it('plain HTTP to the TLS port is disconnected, and the server keeps serving', async () => {
    const socket = net.connect(srv.port, '127.0.0.1');
    const got = closed(socket);
    socket.write('POST /__runner/task/tls.add HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}');
    const answer = await withTimeout(got, 5000, 'plain HTTP connection closed');
    assert.ok(!answer.toString('latin1').includes('HTTP/1.1'), 'no HTTP answer in the clear');
    const r = await call(srv.url, 'tls.add', { a: 1, b: 1 });
    assert.equal(r.status, 200);
  });
});

describe('the TLS handshake is bounded by the head timeout', () => {
  let srv;
  before(async () => {
    srv = await started({ requestTimeout: 400 });
  });
  after(() => srv.server.close());

  it('a client that never handshakes is disconnected, others are served meanwhile', async () => {
    const silentClient = net.connect(srv.port, '127.0.0.1');
    const gone = closed(silentClient);
    const t0 = Date.now();
    const r = await call(srv.url, 'tls.add', { a: 3, b: 4 });
    assert.equal(r.status, 200);
    await withTimeout(gone, 5000, 'silent client disconnected');
    const waited = Date.now() - t0;
    assert.ok(waited >= 300 && waited < 3000, `disconnected after ${waited} ms`);
  });
});

describe('client certificates (tls.requestCert with tls.ca)', () => {
  let srv;
  let ran = 0;
  before(async () => {
    srv = await started({ tls: serverTls({ ca: pem('ca.pem'), requestCert: true }) }, (s) =>
      s.registerTask('tls.who', async () => ({ ran: ++ran })),
    );
  });
  after(() => srv.server.close());

  it('a client with a certificate signed by the CA is served', async () => {
    const r = await call(srv.url, 'tls.who', {}, { cert: pem('client.pem'), key: pem('client.key') });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).ok, true);
  });

  it('a client without a certificate is refused at the handshake', async () => {
    const before = ran;
    await assert.rejects(call(srv.url, 'tls.who', {}));
    assert.equal(ran, before, 'the handler did not run');
  });

  it('a client with a certificate the CA did not sign is refused', async () => {
    const before = ran;
    await assert.rejects(call(srv.url, 'tls.who', {}, { cert: pem('rogue.pem'), key: pem('rogue.key') }));
    assert.equal(ran, before, 'the handler did not run');
  });
});

describe('TLS configuration errors make listen() reject with ERR_TLS_CONFIG', () => {
  const cases = [
    ['a certificate that is not PEM', { cert: 'not a certificate', key: pem('server.key') }, /tls\.cert/],
    ['a key of another certificate', { cert: pem('server.pem'), key: pem('other.key') }, /does not match/],
    ['a key that is not a key', { cert: pem('server.pem'), key: pem('server.pem') }, /tls\.key/],
    [
      'an encrypted key with a wrong passphrase',
      { cert: pem('server.pem'), key: pem('server.enc.key'), passphrase: 'nope' },
      /wrong passphrase/,
    ],
    ['an encrypted key without a passphrase', { cert: pem('server.pem'), key: pem('server.enc.key') }, /passphrase/],
    ['a CA that is not PEM', { ...serverTls(), ca: 'junk', requestCert: true }, /tls\.ca/],
  ];
  for (const [what, tlsOption, message] of cases) {
    it(what, async () => {
      const server = new TunnelServer({ auth: { allowAnonymous: true }, tls: tlsOption });
      await assert.rejects(server.listen(), (e) => {
        assert.equal(e.code, 'ERR_TLS_CONFIG');
        assert.match(e.message, message);
        return true;
      });
      assert.equal(server.address(), null);
    });
  }

  it('an encrypted key with its passphrase serves', async () => {
    const srv = await started({ tls: { cert: pem('server.pem'), key: pem('server.enc.key'), passphrase: PASSPHRASE } });
    try {
      const r = await call(srv.url, 'tls.add', { a: 5, b: 5 });
      assert.deepEqual(JSON.parse(r.body), { ok: true, result: { sum: 10 } });
    } finally {
      await srv.server.close();
    }
  });

  it('PEM strings work as Buffers do, and a chain given as an array', async () => {
    const srv = await started({
      tls: { cert: [pem('server.pem').toString(), pem('ca.pem')], key: pem('server.key').toString() },
    });
    try {
      assert.equal((await call(srv.url, 'tls.add', { a: 1, b: 2 })).status, 200);
    } finally {
      await srv.server.close();
    }
  });
});

describe('tls option types', () => {
  const good = serverTls();
  const cases = [
    ['tls', 'cert.pem'],
    ['tls.cert', { ...good, cert: 42 }],
    ['tls.cert', { key: good.key }],
    ['tls.cert', { ...good, cert: [] }],
    ['tls.key', { ...good, key: undefined }],
    ['tls.key', { ...good, key: [good.key] }],
    ['tls.ca', { ...good, ca: 7 }],
    ['tls.passphrase', { ...good, passphrase: 1234 }],
    ['tls.requestCert', { ...good, ca: pem('ca.pem'), requestCert: 'yes' }],
    ['tls.ca', { ...good, requestCert: true }],
    ['tls.rejectUnauthorized', { ...good, ca: pem('ca.pem'), requestCert: true, rejectUnauthorized: false }],
    ['tls.pfx', { ...good, pfx: Buffer.alloc(4) }],
  ];
  for (const [field, value] of cases) {
    it(`${field}: ${JSON.stringify(value, (k, v) => (v && v.type === 'Buffer' ? '<Buffer>' : v)).slice(0, 60)}`, () => {
      assert.throws(
        () => new TunnelServer({ tls: value }),
        (e) => e instanceof TypeError && e.message.includes(`"${field}"`),
      );
    });
  }
});
