'use strict';
// Compressed answers (`compression`) over real sockets: gzip and brotli by Accept-Encoding
// with q-values, whole JSON answers and streamed ones (still streamed), what is never
// compressed, Runner's fetch client decoding it, and nothing changed without it.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const zlib = require('node:zlib');
const { Readable } = require('node:stream');
const { createHttpClient, createHttpSmartClient, Serializer } = require('@bluelibs/runner');
const { loadNative, silentLogger, rawRequest, taskReq, deferred, sleep, TOKEN } = require('./helpers');

/** A result whose JSON is about `n` × 40 bytes. */
const items = (n) => Array.from({ length: n }, (_, i) => ({ id: i, name: `item-${i}`, on: i % 2 === 0 }));

const decoders = { gzip: zlib.gunzipSync, br: zlib.brotliDecompressSync };

async function start(options = {}, register = () => {}) {
  const { TunnelServer } = loadNative();
  const server = new TunnelServer({ auth: { token: TOKEN }, logger: silentLogger(), ...options });
  server.registerTask('z.items', async (n) => items(n));
  server.registerTask('z.echo', async (input) => input);
  register(server);
  const { url, port } = await server.listen();
  return { server, url, port, close: () => server.close() };
}

const call = (url, id, input, headers = []) => rawRequest(url, taskReq(id, JSON.stringify({ input }), { headers }));
const accept = (value) => [['accept-encoding', value]];

/** The body as JSON, decoded per its content-encoding. */
function decoded(res) {
  const coding = res.headers['content-encoding'];
  const bytes = coding ? decoders[coding](res.body) : res.body;
  return JSON.parse(bytes.toString('utf8'));
}

describe('compression of whole JSON answers', () => {
  let s;
  before(async () => {
    s = await start({ compression: true });
  });
  after(() => s.close());

  it('gzip and br decode to the same JSON as the identity answer, with the compressed content-length', async () => {
    const plain = await call(s.url, 'z.items', 300);
    assert.equal(plain.headers['content-encoding'], undefined);
    const want = plain.json();
    assert.equal(want.result.length, 300);
    for (const coding of ['gzip', 'br']) {
      const res = await call(s.url, 'z.items', 300, accept(coding));
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], coding);
      assert.equal(res.headers.vary, 'Accept-Encoding');
      assert.equal(Number(res.headers['content-length']), res.body.length);
      assert.ok(res.body.length < plain.body.length / 3, `${coding}: ${res.body.length} of ${plain.body.length}`);
      assert.deepEqual(decoded(res), want);
      assert.equal(decoders[coding](res.body).toString('utf8'), plain.text, `${coding}: the same bytes`);
    }
  });

  it('a large answer (compressed off the connection thread) decodes too', async () => {
    const res = await call(s.url, 'z.items', 40_000, accept('br'));
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(decoded(res).result.length, 40_000);
  });

  it('an answer below the threshold (1024 bytes by default) goes as it is', async () => {
    const res = await call(s.url, 'z.items', 5, accept('gzip, br'));
    assert.ok(res.body.length < 1024);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers.vary, undefined);
    assert.equal(res.json().result.length, 5);
  });

  it('error answers are compressed like results', async () => {
    const res = await call(s.url, 'z.missing'.padEnd(2000, 'x'), 1, accept('gzip'));
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(decoded(res).error.code, 'NOT_FOUND');
  });

  const negotiation = [
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0.8, gzip;q=0.9', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['gzip;q=0, br;q=0', undefined],
    ['*', 'br'],
    ['br;q=0, *', 'gzip'],
    ['*;q=0', undefined],
    ['identity', undefined],
    ['gzip;q=0.5, identity', undefined],
    ['gzip, identity;q=0', 'gzip'],
    ['deflate', undefined],
    ['', undefined],
    ['GZIP;Q=0.5', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br;q=2, gzip;q=0.1', 'gzip'],
  ];
  for (const [header, want] of negotiation) {
    it(`Accept-Encoding ${JSON.stringify(header)} gives ${want ?? 'identity'}`, async () => {
      const res = await call(s.url, 'z.items', 100, accept(header));
      assert.equal(res.headers['content-encoding'], want);
      assert.equal(res.headers.vary, 'Accept-Encoding', 'the answer could have been compressed');
      assert.equal(decoded(res).result.length, 100);
    });
  }

  it('Accept-Encoding over several lines counts as one list', async () => {
    const res = await call(s.url, 'z.items', 100, [
      ['accept-encoding', 'deflate'],
      ['accept-encoding', 'gzip'],
    ]);
    assert.equal(res.headers['content-encoding'], 'gzip');
  });

  it('HEAD and the 204 preflight are never compressed', async () => {
    const t = await start({ compression: { threshold: 0 } });
    try {
      const head = await rawRequest(t.url, taskReq('z.items', undefined, { method: 'HEAD', headers: accept('gzip') }));
      assert.equal(head.status, 405);
      assert.equal(head.headers['content-encoding'], undefined);
      assert.equal(head.headers.vary, undefined);
      const preflight = await rawRequest(t.url, {
        method: 'OPTIONS',
        path: '/__runner/task/z.items',
        headers: [['origin', 'https://a.example'], ...accept('gzip')],
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['content-encoding'], undefined);
      // Threshold 0: even a short answer is compressed, when that makes it shorter.
      const small = await call(t.url, 'z.echo', 'x'.repeat(100), accept('gzip'));
      assert.equal(small.headers['content-encoding'], 'gzip');
      assert.deepEqual(decoded(small), { ok: true, result: 'x'.repeat(100) });
      const tiny = await call(t.url, 'z.echo', 1, accept('gzip'));
      assert.equal(tiny.headers['content-encoding'], undefined, 'gzip would make it longer');
      assert.equal(tiny.headers.vary, 'Accept-Encoding');
      assert.deepEqual(tiny.json(), { ok: true, result: 1 });
    } finally {
      await t.close();
    }
  });

  it('levels change the size, not the content', async () => {
    const fast = await start({ compression: { gzipLevel: 1, brotliLevel: 0 } });
    const best = await start({ compression: { gzipLevel: 9, brotliLevel: 11 } });
    try {
      for (const coding of ['gzip', 'br']) {
        const a = await call(fast.url, 'z.items', 2000, accept(coding));
        const b = await call(best.url, 'z.items', 2000, accept(coding));
        assert.deepEqual(decoded(a), decoded(b));
        assert.ok(b.body.length < a.body.length, `${coding}: ${b.body.length} < ${a.body.length}`);
      }
    } finally {
      await Promise.all([fast.close(), best.close()]);
    }
  });
});

/** The whole answer as it came off the socket, with the date line taken out. */
function rawAnswer(port, request) {
  return new Promise((resolve, reject) => {
    // Written, not ended: a client that half-closes after its request has gone away.
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    const got = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', reject);
    sock.on('close', () =>
      resolve(
        Buffer.concat(got)
          .toString('latin1')
          .replace(/\r\ndate: [^\r]*/i, ''),
      ),
    );
  });
}

describe('without Accept-Encoding, or with compression off, nothing changes', () => {
  it('the same bytes as a server without compression, for a client that sends no Accept-Encoding', async () => {
    const on = await start({ compression: { threshold: 0 } });
    const off = await start();
    try {
      for (const n of [1, 300]) {
        const body = JSON.stringify({ input: n });
        const req =
          `POST /__runner/task/z.items HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\n` +
          `x-runner-request-id: same-id\r\nconnection: close\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\n\r\n${body}`;
        const [a, b] = await Promise.all([rawAnswer(on.port, req), rawAnswer(off.port, req)]);
        assert.ok(a.startsWith('HTTP/1.1 200 OK'), a.slice(0, 40));
        assert.equal(a, b);
      }
    } finally {
      await Promise.all([on.close(), off.close()]);
    }
  });

  it('with compression off, Accept-Encoding is ignored', async () => {
    const off = await start();
    try {
      const res = await call(off.url, 'z.items', 300, accept('gzip, br'));
      assert.equal(res.headers['content-encoding'], undefined);
      assert.equal(res.headers.vary, undefined);
      assert.equal(res.json().result.length, 300);
    } finally {
      await off.close();
    }
  });
});

/** Reads a streamed answer from a raw socket, decoding the chunked framing as it arrives. */
function streamedAnswer(port, id, headers) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let head = null;
  const events = [];
  let wake = () => {};
  const push = (e) => {
    events.push(e);
    wake();
  };
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (!head) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      head = { status: Number(lines[0].slice(9, 12)), headers: {} };
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        head.headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      buf = buf.subarray(end + 4);
      push({ head });
    }
    for (;;) {
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const size = parseInt(buf.subarray(0, eol).toString('latin1'), 16);
      if (buf.length < eol + 2 + size + 2) return;
      const data = buf.subarray(eol + 2, eol + 2 + size);
      buf = buf.subarray(eol + 2 + size + 2);
      push(size === 0 ? { end: true } : { data });
    }
  });
  sock.on('error', () => {});
  const body = '{}';
  sock.write(
    `POST /__runner/task/${id} HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\n` +
      headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
  );
  return {
    /** The next event ({ head } | { data } | { end }), within `ms`. */
    async next(ms = 5000) {
      const until = Date.now() + ms;
      while (!events.length) {
        if (Date.now() > until) throw new Error('no event in time');
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 20);
        });
      }
      return events.shift();
    },
    close: () => sock.destroy(),
  };
}

describe('compression of streamed answers', () => {
  let s;
  let step;
  before(async () => {
    s = await start({ compression: true }, (server) => {
      // Writes one line, waits for the test, writes another and ends: a stream that is
      // only interactive if each write reaches the client as it is written.
      server.registerTask('z.lines', async (input, ctx) => {
        ctx.res.setHeader('content-type', 'application/x-ndjson');
        ctx.res.write('{"line":1}\n');
        await step.promise;
        ctx.res.write('{"line":2}\n');
        ctx.res.end();
      });
      server.registerTask('z.readable', async () => ({
        stream: Readable.from(['a'.repeat(3000), 'b'.repeat(3000)]),
        contentType: 'text/plain',
      }));
      server.registerTask('z.sized', async (input, ctx) => {
        ctx.res.setHeader('content-length', '4');
        ctx.res.end('abcd');
      });
      server.registerTask('z.png', async () => ({
        stream: Readable.from([Buffer.alloc(2000)]),
        contentType: 'image/png',
      }));
      server.registerTask('z.encoded', async (input, ctx) => {
        ctx.res.setHeader('content-encoding', 'gzip');
        ctx.res.end(zlib.gzipSync('already'));
      });
    });
  });
  after(() => s.close());

  for (const [coding, makeDecoder] of [
    ['gzip', () => zlib.createGunzip()],
    ['br', () => zlib.createBrotliDecompress()],
  ]) {
    it(`${coding}: the first chunk arrives, decoded, before the stream ends`, async () => {
      step = deferred();
      const answer = streamedAnswer(s.port, 'z.lines', accept(coding));
      const decoder = makeDecoder();
      let text = '';
      decoder.on('data', (d) => (text += d.toString('utf8')));
      try {
        const { head } = await answer.next();
        assert.equal(head.status, 200);
        assert.equal(head.headers['content-encoding'], coding);
        assert.equal(head.headers['transfer-encoding'], 'chunked');
        assert.equal(head.headers['content-length'], undefined);
        assert.equal(head.headers.vary, 'Accept-Encoding');
        const first = await answer.next();
        assert.ok(first.data, 'a chunk before the handler went on');
        decoder.write(first.data);
        for (let i = 0; i < 100 && text === ''; i++) await sleep(5);
        assert.equal(text, '{"line":1}\n', 'the first line decodes on its own');
        step.resolve();
        for (;;) {
          const e = await answer.next();
          if (e.end) break;
          decoder.write(e.data);
        }
        await new Promise((r) => decoder.end(r));
        assert.equal(text, '{"line":1}\n{"line":2}\n');
      } finally {
        step.resolve();
        answer.close();
      }
    });
  }

  it('a returned Readable is compressed too, and decodes whole', async () => {
    const res = await rawRequest(s.url, taskReq('z.readable', '{}', { headers: accept('br') }));
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(res.body).toString(), 'a'.repeat(3000) + 'b'.repeat(3000));
  });

  it('a stream with a content-length, a compressed type or its own content-encoding is left alone', async () => {
    const sized = await rawRequest(s.url, taskReq('z.sized', '{}', { headers: accept('gzip') }));
    assert.equal(sized.headers['content-encoding'], undefined);
    assert.equal(sized.text, 'abcd');
    const png = await rawRequest(s.url, taskReq('z.png', '{}', { headers: accept('gzip') }));
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.body.length, 2000);
    const encoded = await rawRequest(s.url, taskReq('z.encoded', '{}', { headers: accept('br') }));
    assert.equal(encoded.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(encoded.body).toString(), 'already');
  });
});

describe("Runner's clients", () => {
  it('createHttpClient (fetch) gets gzip and decodes it transparently', async () => {
    const s = await start({ compression: true });
    try {
      const seen = [];
      const client = createHttpClient({
        baseUrl: `${s.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
        fetchImpl: async (url, init) => {
          const res = await fetch(url, init);
          seen.push(res.headers.get('content-encoding'));
          return res;
        },
      });
      assert.deepEqual(await client.task('z.items', 500), items(500));
      assert.deepEqual(await client.task('z.echo', 'short'), 'short');
      assert.deepEqual(seen, ['gzip', null]);
    } finally {
      await s.close();
    }
  });

  it('createHttpSmartClient (node:http, no Accept-Encoding) gets identity', async () => {
    const s = await start({ compression: { threshold: 0 } });
    try {
      const client = createHttpSmartClient({
        baseUrl: `${s.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
      });
      assert.deepEqual(await client.task('z.items', 500), items(500));
    } finally {
      await s.close();
    }
  });
});

describe('compression options: TypeError naming the field', () => {
  const { TunnelServer } = loadNative();
  const bad = [
    ['compression', { compression: 'gzip' }],
    ['compression', { compression: 1 }],
    ['compression', { compression: ['br'] }],
    ['compression.threshold', { compression: { threshold: -1 } }],
    ['compression.threshold', { compression: { threshold: '1k' } }],
    ['compression.gzipLevel', { compression: { gzipLevel: 0 } }],
    ['compression.gzipLevel', { compression: { gzipLevel: 10 } }],
    ['compression.brotliLevel', { compression: { brotliLevel: 12 } }],
    ['compression.brotliLevel', { compression: { brotliLevel: 4.5 } }],
  ];
  for (const [field, opts] of bad) {
    it(`${JSON.stringify(opts)} names "${field}"`, () => {
      assert.throws(
        () => new TunnelServer({ auth: { token: TOKEN }, ...opts }),
        (err) => err instanceof TypeError && err.message.includes(`"${field}"`),
      );
    });
  }
  it('good values are accepted', () => {
    for (const compression of [true, false, null, {}, { threshold: 0, gzipLevel: 9, brotliLevel: 0 }]) {
      new TunnelServer({ compression });
    }
  });
});
