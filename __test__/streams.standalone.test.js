'use strict';
// Streams on the standalone TunnelServer: raw request bodies (ctx.req), streamed answers (a
// returned Readable, { stream, status, contentType, headers }, ctx.res), duplex, multipart files,
// client disconnects, handler failures mid-stream and backpressure in both directions.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const { Readable } = require('node:stream');
const { once } = require('node:events');
const { startNative, rawRequest, openAndSend, request, streamRequest, ResponseParser, deferred } = require('./helpers');
const S = require('./helpers/streams');

const { TOKEN, MB } = S;
const BASE = '/__runner';
const RAW = [
  ['x-runner-token', TOKEN],
  ['Content-Type', 'application/octet-stream'],
];
const JSONH = [
  ['x-runner-token', TOKEN],
  ['Content-Type', 'application/json'],
];
const MPH = [
  ['x-runner-token', TOKEN],
  ['Content-Type', S.MULTIPART_CT],
];

function newProbe() {
  return {
    firstChunk: deferred(),
    aborted: deferred(),
    reqClosed: deferred(),
    sourceClosed: deferred(),
    resClosed: deferred(),
    done: deferred(),
    received: 0,
    outcome: undefined,
    source: undefined,
    ctx: undefined,
  };
}
let probe = newProbe();

const inputType = (v) => (v === undefined ? 'undefined' : v === null ? 'null' : typeof v);

const handlers = {
  add: async ({ a, b }) => a + b,

  // ---- raw bodies
  'raw.digest': async (input, ctx) => {
    const { req } = ctx;
    const info = {
      inputType: inputType(input),
      isReadable: req instanceof Readable,
      method: req.method,
      contentType: req.headers['content-type'],
    };
    return { ...info, ...(await S.digestStream(req)) };
  },
  'raw.firstChunk': async (input, ctx) => {
    const p = probe;
    const d = new S.Digest();
    for await (const c of ctx.req) {
      d.update(c);
      p.firstChunk.resolve(d.bytes);
    }
    return d.result();
  },
  'raw.hold': async (input, ctx) => {
    const p = probe;
    p.ctx = ctx;
    ctx.signal.addEventListener('abort', () => p.aborted.resolve(ctx.signal.reason));
    ctx.req.on('close', () => p.reqClosed.resolve());
    try {
      for await (const c of ctx.req) {
        p.received += c.length;
        p.firstChunk.resolve();
      }
      p.outcome = 'ended';
    } catch (e) {
      p.outcome = `error:${e && e.name}`;
    }
    p.done.resolve();
    return { received: p.received };
  },
  // reads the first chunk, then stops reading (the body stays paused) until told to go on
  'raw.slowReader': async (input, ctx) => {
    const p = probe;
    ctx.signal.addEventListener('abort', () => p.aborted.resolve());
    ctx.req.once('data', (c) => {
      p.received += c.length;
      ctx.req.pause();
      p.firstChunk.resolve();
    });
    ctx.req.on('error', () => {});
    await Promise.race([p.done.promise, p.aborted.promise]);
    ctx.req.destroy();
    return { received: p.received };
  },

  // ---- streamed answers
  'out.readable': async () => Readable.from(['hello ', 'streamed ', 'world']),
  'out.obj': async (input) => ({
    stream: Readable.from(input.parts),
    ...(input.status !== undefined ? { status: input.status } : {}),
    ...(input.contentType !== undefined ? { contentType: input.contentType } : {}),
    ...(input.headers !== undefined ? { headers: input.headers } : {}),
  }),
  'out.big': async (input) => new S.PatternSource(input.size),
  'out.infinite': async (input, ctx) => {
    const p = probe;
    ctx.signal.addEventListener('abort', () => p.aborted.resolve());
    const src = new S.PatternSource(Infinity);
    p.source = src;
    src.on('close', () => p.sourceClosed.resolve());
    return src;
  },
  'res.writeHead': async (input, ctx) => {
    const { res } = ctx;
    res.writeHead(207, { 'content-type': 'text/plain; charset=utf-8', 'x-one': '1', 'x-many': ['a', 'b'] });
    res.write('first,');
    res.write(Buffer.from('second,'));
    res.end('third');
    return { mustNotBeSent: true };
  },
  'res.setHeader': async (input, ctx) => {
    const { res } = ctx;
    res.statusCode = 201;
    res.setHeader('Content-Type', 'text/csv');
    res.setHeader('x-by', 'setHeader');
    assert.equal(res.getHeader('x-by'), 'setHeader');
    res.end('a,b\n1,2\n');
    return 'ignored';
  },
  'res.drain': async (input, ctx) => {
    const { res } = ctx;
    const p = probe;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let off = 0;
    p.falseWrites = 0;
    while (off < input.size) {
      const len = Math.min(32 * 1024, input.size - off);
      const ok = res.write(S.patternSlice(off, len));
      off += len;
      if (!ok) {
        p.falseWrites += 1;
        await once(res, 'drain');
      }
    }
    res.end();
  },
  'res.loop': async (input, ctx) => {
    const { res } = ctx;
    const p = probe;
    const aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    aborted.then(() => p.aborted.resolve());
    res.on('close', () => p.resClosed.resolve());
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let off = 0;
    while (!res.writableEnded && !ctx.signal.aborted) {
      const ok = res.write(S.patternSlice(off, 32 * 1024));
      off += 32 * 1024;
      p.written = off;
      if (!ok) await Promise.race([S.firstEvent(res, ['drain', 'close']), aborted]);
    }
    p.done.resolve();
  },

  // ---- duplex
  'echo.upper': async (input, ctx) => ctx.req.pipe(S.upperCase()),
  'echo.upperProbe': async (input, ctx) => {
    const p = probe;
    ctx.signal.addEventListener('abort', () => p.aborted.resolve());
    ctx.req.on('close', () => p.reqClosed.resolve());
    ctx.req.on('error', () => {});
    const out = ctx.req.pipe(S.upperCase());
    p.source = out;
    out.on('close', () => p.sourceClosed.resolve());
    return out;
  },

  // ---- failures mid-stream
  'fail.resThrow': async (input, ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'text/plain' });
    ctx.res.write('partial ');
    await S.sleep(20);
    throw new Error('boom mid-stream');
  },
  'fail.sourceError': async () => {
    const src = new Readable({ read() {} });
    src.push('first ');
    setTimeout(() => {
      src.push('second ');
      setTimeout(() => src.destroy(new Error('source broke')), 20);
    }, 20);
    return src;
  },

  // ---- multipart
  'mp.describe': async (input) => S.describeFiles(input),
  'mp.inspect': async (input) => {
    const f = input.file;
    const keys = ['name', 'type', 'size', 'lastModified', 'extra'].filter((k) => f[k] !== undefined);
    const resolved = await f.resolve();
    let secondError = null;
    try {
      f.stream();
    } catch (e) {
      secondError = String(e.message).split('\n')[0];
    }
    const content = await S.readAll(resolved.stream);
    return {
      keys,
      name: f.name,
      type: f.type,
      size: f.size ?? null,
      lastModified: f.lastModified ?? null,
      extra: f.extra ?? null,
      hasToTempFile: typeof f.toTempFile === 'function',
      isReadable: resolved.stream instanceof Readable,
      secondError,
      text: content.toString('utf8'),
      other: input.other,
    };
  },
  'mp.temp': async (input) => {
    const out = await input.file.toTempFile();
    const content = await fs.promises.readFile(out.path);
    const exists = fs.existsSync(out.path);
    await fs.promises.unlink(out.path);
    return { bytesWritten: out.bytesWritten, exists, ...S.digestOf(content) };
  },
  'mp.firstChunk': async (input) => {
    const p = probe;
    const d = new S.Digest();
    for await (const c of input.file.stream()) {
      d.update(c);
      p.firstChunk.resolve(d.bytes);
    }
    return d.result();
  },
};

const taskPath = (id) => `${BASE}/task/${id}`;
const url = (server, id) => `${server.url}${taskPath(id)}`;

/** Resolves once `count` bytes of the answer arrived on a raw socket. */
function firstBytes(socket, count) {
  let got = 0;
  return S.within(
    new Promise((resolve) => {
      socket.on('data', (d) => {
        got += d.length;
        if (got > count) resolve();
      });
    }),
    10000,
    `first ${count} bytes`,
  );
}

async function assertStillServing(server) {
  const res = await rawRequest(server, {
    method: 'POST',
    path: taskPath('add'),
    headers: JSONH,
    body: JSON.stringify({ input: { a: 20, b: 22 } }),
  });
  assert.equal(res.status, 200, `server should still answer: ${res.text}`);
  assert.deepEqual(res.json(), { ok: true, result: 42 });
}

/** Opens a socket, writes `bytes` (a Buffer), resolves with the socket once written. */
const connectAndWrite = (server, bytes) => openAndSend(server, { raw: bytes });

/** Opens a socket and sends a call of task `id` with the JSON body `{}`; resolves with the socket. */
const startEmptyCall = (server, id) =>
  connectAndWrite(server, Buffer.concat([head(id, JSONH, ['Content-Length: 2']), Buffer.from('{}')]));

/** The answer that arrives on `socket` (as rawRequest gives it); rejects if the socket fails or closes first. */
function answerOn(socket) {
  const parser = new ResponseParser('POST');
  return new Promise((resolve, reject) => {
    socket.on('data', (d) => {
      parser.push(d);
      if (parser.done) resolve(parser.result());
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before the answer')));
  });
}

/** Asserts that every one of the `named` promises settles within `ms` (one assertion shows which did not). */
async function assertAllSettle(named, ms, message) {
  const seen = await S.whichSettle(named, ms);
  assert.deepEqual(seen, Object.fromEntries(Object.keys(named).map((k) => [k, true])), message);
}

function head(id, headers, extra = []) {
  const lines = [
    `POST ${taskPath(id)} HTTP/1.1`,
    'Host: 127.0.0.1',
    ...headers.map(([k, v]) => `${k}: ${v}`),
    ...extra,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

describe('standalone TunnelServer streams', () => {
  let server;
  before(async () => {
    server = await startNative(
      { tasks: handlers },
      { auth: { token: TOKEN }, limits: { multipart: { fileSize: 64 * MB, files: 4, fields: 10, fieldSize: MB } } },
    );
  });
  after(async () => server && server.close());
  beforeEach(() => {
    probe = newProbe();
  });

  describe('raw request body (application/octet-stream) on ctx.req', () => {
    it('1 MB body arrives intact; input is undefined; req carries method and headers', async () => {
      const body = S.patternBytes(MB);
      const res = await rawRequest(server, { method: 'POST', path: taskPath('raw.digest'), headers: RAW, body });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json(), {
        ok: true,
        result: {
          inputType: 'undefined',
          isReadable: true,
          method: 'POST',
          contentType: 'application/octet-stream',
          ...S.expectedDigest(MB),
        },
      });
    });

    it('content-type with parameters is still a raw body', async () => {
      const body = S.patternBytes(1000);
      const headers = [
        ['x-runner-token', TOKEN],
        ['Content-Type', 'Application/Octet-Stream; foo=bar'],
      ];
      const res = await rawRequest(server, { method: 'POST', path: taskPath('raw.digest'), headers, body });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().result.inputType, 'undefined');
      assert.equal(res.json().result.sha256, S.expectedDigest(1000).sha256);
    });

    it('chunked, slow upload: the handler reads while the client is still sending', async () => {
      const total = 20 * 16 * 1024;
      const socket = await connectAndWrite(server, head('raw.firstChunk', RAW, ['Transfer-Encoding: chunked']));
      const answered = answerOn(socket);
      const chunk = (off, len) => {
        const b = S.patternBytes(len, off);
        return Buffer.concat([Buffer.from(`${len.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
      };
      socket.write(chunk(0, 16 * 1024));
      // Nothing more is sent until the handler has seen bytes: a server buffering the whole
      // body first would never get here.
      const firstSeen = await S.within(probe.firstChunk.promise, 10000, 'first chunk reaching the handler');
      assert.ok(firstSeen > 0 && firstSeen <= 16 * 1024);
      for (let off = 16 * 1024; off < total; off += 16 * 1024) {
        await S.sleep(10);
        socket.write(chunk(off, 16 * 1024));
      }
      socket.write('0\r\n\r\n');
      const res = await S.within(answered, 15000, 'answer');
      socket.destroy();
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json(), { ok: true, result: S.expectedDigest(total) });
    });

    it('empty body (content-length: 0) and no body at all: ctx.req ends at once', async () => {
      for (const spec of [
        { method: 'POST', path: taskPath('raw.digest'), headers: [...RAW, ['Content-Length', '0']] },
        { method: 'POST', path: taskPath('raw.digest'), headers: RAW },
        { method: 'POST', path: taskPath('raw.digest'), headers: RAW, chunked: true, chunks: [] },
      ]) {
        const res = await rawRequest(server, { ...spec, timeoutMs: 10000 });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json().result.bytes, 0);
        assert.equal(res.json().result.sha256, S.digestOf(Buffer.alloc(0)).sha256);
      }
    });
  });

  describe('streamed answers', () => {
    it('a returned Readable streams as application/octet-stream (chunked)', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('out.readable'),
        headers: JSONH,
        body: '{}',
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'hello streamed world');
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      assert.match(res.headers['transfer-encoding'] ?? '', /chunked/);
      assert.equal(res.headers['content-length'], undefined);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.ok(res.headers['x-runner-request-id']);
    });

    it('{ stream, status, contentType, headers }: user headers kept, blocked ones dropped', async () => {
      const input = {
        parts: ['id,name\n', '1,ada\n'],
        status: 201,
        contentType: 'text/csv; charset=utf-8',
        headers: {
          'x-custom': 'yes',
          'X-Multi': ['1', '2'],
          'Set-Cookie': 'session=stolen',
          'Access-Control-Allow-Origin': 'https://evil.example',
          'access-control-allow-credentials': 'true',
          'X-Content-Type-Options': 'sniff-away',
          'x-frame-options': 'ALLOWALL',
        },
      };
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('out.obj'),
        headers: JSONH,
        body: JSON.stringify({ input }),
      });
      assert.equal(res.status, 201);
      assert.equal(res.text, 'id,name\n1,ada\n');
      assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
      assert.equal(res.headers['x-custom'], 'yes');
      assert.equal(res.headers['x-multi'], '1, 2');
      assert.equal(res.headers['set-cookie'], undefined);
      assert.notEqual(res.headers['access-control-allow-origin'], 'https://evil.example');
      assert.equal(res.headers['access-control-allow-credentials'], undefined);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      for (const [k] of res.rawHeaders) assert.notEqual(k.toLowerCase(), 'set-cookie');
      assert.equal(res.rawHeaders.filter(([k]) => k.toLowerCase() === 'x-frame-options').length, 1);
      assert.equal(res.rawHeaders.filter(([k]) => k.toLowerCase() === 'content-type').length, 1);
    });

    it('{ stream } alone: status 200, application/octet-stream', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('out.obj'),
        headers: JSONH,
        body: JSON.stringify({ input: { parts: ['x', 'y'] } }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'xy');
      assert.equal(res.headers['content-type'], 'application/octet-stream');
    });

    it('8 MB streamed answer arrives intact', async () => {
      const size = 8 * MB;
      const { status, headers, res } = await streamRequest(url(server, 'out.big'), {
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify({ input: { size } }),
      });
      assert.equal(status, 200);
      assert.equal(headers['content-type'], 'application/octet-stream');
      assert.deepEqual(await S.within(S.digestStream(res), 30000, 'download'), S.expectedDigest(size));
    });

    it('ctx.res: writeHead + write + end; the return value is ignored', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('res.writeHead'),
        headers: JSONH,
        body: '{}',
      });
      assert.equal(res.status, 207);
      assert.equal(res.text, 'first,second,third');
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(res.headers['x-one'], '1');
      assert.equal(res.headers['x-many'], 'a, b');
      assert.ok(!res.text.includes('mustNotBeSent'));
    });

    it('ctx.res: statusCode + setHeader + end', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('res.setHeader'),
        headers: JSONH,
        body: '{}',
      });
      assert.equal(res.status, 201);
      assert.equal(res.text, 'a,b\n1,2\n');
      assert.equal(res.headers['content-type'], 'text/csv');
      assert.equal(res.headers['x-by'], 'setHeader');
    });

    it("ctx.res: write() returning false is followed by 'drain'; 16 MB intact", async () => {
      const size = 16 * MB;
      const { status, res } = await streamRequest(url(server, 'res.drain'), {
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify({ input: { size } }),
      });
      assert.equal(status, 200);
      assert.deepEqual(await S.within(S.digestStream(res), 30000, 'download'), S.expectedDigest(size));
      assert.ok(probe.falseWrites > 0, 'writing 16 MB in a tight loop should hit the high-water mark at least once');
    });
  });

  describe('duplex', () => {
    it('upper-casing echo: answer chunks arrive while the request is still being sent', async () => {
      const req = http.request(url(server, 'echo.upper'), {
        method: 'POST',
        agent: false,
        headers: {
          'x-runner-token': TOKEN,
          'content-type': 'application/octet-stream',
          'transfer-encoding': 'chunked',
        },
      });
      const response = new Promise((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
      });
      req.write('hello ');
      const res = await S.within(response, 10000, 'response head before the request body ended');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      const received = [];
      const nextData = () =>
        S.within(
          once(res, 'data').then(([c]) => c.toString()),
          10000,
          'echoed chunk',
        );
      let got = await nextData();
      received.push(got);
      assert.equal(got, 'HELLO ');
      for (const word of ['duplex ', 'world']) {
        req.write(word);
        got = await nextData();
        received.push(got);
        assert.equal(got, word.toUpperCase());
      }
      req.end();
      const rest = await S.within(S.readAll(res), 10000, 'end of the echo');
      assert.equal(received.join('') + rest.toString(), 'HELLO DUPLEX WORLD');
    });

    it('upper-casing echo of 4 MB', async () => {
      const size = 4 * MB;
      const src = new S.PatternSource(size);
      const { status, res } = await streamRequest(url(server, 'echo.upper'), {
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/octet-stream' },
        body: src,
      });
      assert.equal(status, 200);
      const expected = S.upperBytes(S.patternBytes(size));
      const got = await S.within(S.readAll(res), 30000, 'echo');
      assert.equal(got.length, size);
      assert.ok(got.equals(expected), 'echoed bytes differ');
    });
  });

  describe('client going away', () => {
    it('mid-upload: ctx.signal aborts, ctx.req fails and closes, the server keeps serving', async () => {
      const socket = await connectAndWrite(
        server,
        Buffer.concat([head('raw.hold', RAW, [`Content-Length: ${100 * MB}`]), S.patternBytes(64 * 1024)]),
      );
      await S.within(probe.firstChunk.promise, 10000, 'first chunk reaching the handler');
      socket.destroy();
      await assertAllSettle(
        {
          signalAborted: probe.aborted.promise,
          reqClosed: probe.reqClosed.promise,
          handlerLoopDone: probe.done.promise,
        },
        5000,
        'after the client went away mid-upload',
      );
      assert.match(probe.outcome, /^error:/, 'reading a body whose client went away must fail, not end normally');
      assert.ok(probe.received < 100 * MB);
      await assertStillServing(server);
    });

    it('mid-download (returned Readable): ctx.signal aborts and the source is destroyed', async () => {
      const socket = await startEmptyCall(server, 'out.infinite');
      await firstBytes(socket, 512 * 1024);
      socket.destroy();
      await S.within(probe.sourceClosed.promise, 10000, 'source destroyed');
      assert.equal(probe.source.destroyed, true);
      await S.within(probe.aborted.promise, 10000, 'ctx.signal abort');
      const producedAtClose = probe.source.produced;
      await S.sleep(200);
      assert.equal(probe.source.produced, producedAtClose, 'source still read after the client left');
      await assertStillServing(server);
    });

    it("mid-download (ctx.res): ctx.signal aborts, res emits 'close', the writer loop stops", async () => {
      const socket = await startEmptyCall(server, 'res.loop');
      await firstBytes(socket, 512 * 1024);
      socket.destroy();
      await S.within(probe.aborted.promise, 10000, 'ctx.signal abort');
      await S.within(probe.resClosed.promise, 10000, "res 'close'");
      await S.within(probe.done.promise, 10000, 'writer loop end');
      await assertStillServing(server);
    });

    it('mid-duplex: ctx.signal aborts, the request body and the answer source both end', async () => {
      const socket = await connectAndWrite(
        server,
        Buffer.concat([head('echo.upperProbe', RAW, ['Transfer-Encoding: chunked']), Buffer.from('5\r\nhello\r\n')]),
      );
      const first = await S.within(once(socket, 'data'), 10000, 'echo head');
      assert.match(first[0].toString('latin1'), /^HTTP\/1\.1 200/);
      socket.destroy();
      await assertAllSettle(
        {
          signalAborted: probe.aborted.promise,
          reqClosed: probe.reqClosed.promise,
          answerSourceClosed: probe.sourceClosed.promise,
        },
        5000,
        'after the client went away mid-duplex',
      );
      await assertStillServing(server);
    });

    it('mid-duplex with a handler that only pipes ctx.req (no error listener): no uncaught error', async () => {
      const uncaught = [];
      const onUncaught = (e) => uncaught.push(e);
      process.on('uncaughtException', onUncaught);
      try {
        const socket = await connectAndWrite(
          server,
          Buffer.concat([head('echo.upper', RAW, ['Transfer-Encoding: chunked']), Buffer.from('5\r\nhello\r\n')]),
        );
        await S.within(once(socket, 'data'), 10000, 'echo head');
        socket.destroy();
        await S.sleep(300);
      } finally {
        process.removeListener('uncaughtException', onUncaught);
      }
      assert.deepEqual(
        uncaught.map((e) => `${e && e.name}: ${e && e.message}`),
        [],
        "ctx.req emitted 'error' with no listener when the client went away (Node's IncomingMessage only emits 'error' when someone listens)",
      );
      await assertStillServing(server);
    });
  });

  describe('handler failing mid-stream', () => {
    it('throwing after ctx.res.write: the client gets the bytes so far and a terminated chunked body', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('fail.resThrow'),
        headers: JSONH,
        body: '{}',
        timeoutMs: 10000,
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'partial ');
      assert.match(res.headers['transfer-encoding'] ?? '', /chunked/);
      assert.ok(
        server.logger.entries.some(([level, msg]) => level === 'error' && /fail\.resThrow/.test(String(msg))),
        'the failure is logged',
      );
      await assertStillServing(server);
    });

    it('a source erroring mid-stream: bytes so far, then a terminated chunked body', async () => {
      const res = await rawRequest(server, {
        method: 'POST',
        path: taskPath('fail.sourceError'),
        headers: JSONH,
        body: '{}',
        timeoutMs: 10000,
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'first second ');
      await assertStillServing(server);
    });
  });

  describe('backpressure', () => {
    it('slow-reading client on an infinite source: the source is paused, memory stays bounded', async (t) => {
      const rss0 = process.memoryUsage().rss;
      const socket = await startEmptyCall(server, 'out.infinite');
      const parser = new ResponseParser('POST');
      let got = 0;
      const onData = (d) => {
        parser.push(d);
        got += d.length;
      };
      socket.on('data', onData);
      await S.waitFor(() => got > 0, { timeoutMs: 10000, what: 'answer start' });
      socket.pause(); // stop reading: only kernel buffers and the server's queue can fill
      await S.sleep(1500);
      const produced = probe.source.produced;
      const rss1 = process.memoryUsage().rss;
      t.diagnostic(
        `while paused: source produced ${(produced / MB).toFixed(2)} MB, client received ${(got / MB).toFixed(2)} MB, rss +${((rss1 - rss0) / MB).toFixed(1)} MB`,
      );
      assert.ok(
        produced < 48 * MB,
        `source produced ${(produced / MB).toFixed(1)} MB while the client read ${(got / MB).toFixed(2)} MB`,
      );
      assert.ok(rss1 - rss0 < 96 * MB, `rss grew by ${((rss1 - rss0) / MB).toFixed(1)} MB`);
      // resume: the bytes keep coming, intact
      socket.resume();
      await S.waitFor(() => parser.bodyChunks.reduce((n, c) => n + c.length, 0) > 8 * MB, {
        timeoutMs: 20000,
        what: '8 MB of body',
      });
      socket.destroy();
      const body = Buffer.concat(parser.bodyChunks).subarray(0, 8 * MB);
      assert.ok(body.equals(S.patternBytes(8 * MB)), 'streamed bytes differ from the source');
      await S.within(probe.sourceClosed.promise, 10000, 'source destroyed');
    });

    it('handler not reading ctx.req: the upload is held back, not buffered', async (t) => {
      const socket = await connectAndWrite(server, head('raw.slowReader', RAW, [`Content-Length: ${1024 * MB}`]));
      socket.on('error', () => {});
      let written = 0;
      let stop = false;
      const pump = (async () => {
        while (!stop && !socket.destroyed) {
          const chunk = S.patternSlice(written, 64 * 1024);
          written += chunk.length;
          if (!socket.write(chunk)) await S.firstEvent(socket, ['drain', 'close']);
        }
      })();
      await S.within(probe.firstChunk.promise, 10000, 'first chunk');
      await S.sleep(1500);
      const accepted = written - socket.writableLength;
      t.diagnostic(
        `the socket accepted ${(accepted / MB).toFixed(2)} MB while the handler had read ${probe.received} bytes`,
      );
      stop = true;
      assert.ok(
        accepted < 48 * MB,
        `the server let ${(accepted / MB).toFixed(1)} MB in while its handler read ${probe.received} bytes`,
      );
      probe.done.resolve();
      socket.destroy();
      await pump;
      await assertStillServing(server);
    });
  });

  describe('multipart (standalone API)', () => {
    it('manifest + files: InputFile objects with metadata, single-use resolve(), data intact', async () => {
      const input = {
        file: S.fileSentinel('F1', { name: 'notes.txt', type: 'text/plain', size: 11, extra: { k: 1 } }),
        other: { n: 1, list: ['x'] },
      };
      const body = S.multipartBuffer([
        S.manifestPart(input),
        S.filePart('F1', 'hello files', 'ignored.txt', 'application/x-ignored'),
      ]);
      const res = await rawRequest(server, { method: 'POST', path: taskPath('mp.inspect'), headers: MPH, body });
      assert.equal(res.status, 200, res.text);
      const out = res.json().result;
      assert.equal(out.name, 'notes.txt');
      assert.equal(out.type, 'text/plain');
      assert.equal(out.size, 11);
      assert.deepEqual(out.extra, { k: 1 });
      assert.equal(out.hasToTempFile, true);
      assert.equal(out.isReadable, true);
      assert.match(String(out.secondError), /already consumed/);
      assert.equal(out.text, 'hello files');
      assert.deepEqual(out.other, { n: 1, list: ['x'] });
    });

    it('metadata from the part when the manifest has none; several files in nested input', async () => {
      const input = { a: [S.fileSentinel('A'), { deep: S.fileSentinel('B', { name: 'b.bin' }) }], plain: 'x' };
      const body = S.multipartBuffer([
        S.manifestPart(input),
        S.filePart('A', 'aaa', 'a.txt', 'text/plain'),
        S.filePart('B', S.patternBytes(3000), 'part-name.bin', 'image/png'),
      ]);
      const res = await rawRequest(server, { method: 'POST', path: taskPath('mp.describe'), headers: MPH, body });
      assert.equal(res.status, 200, res.text);
      const out = res.json().result;
      assert.deepEqual(out.shape, { a: [{ $file: 0 }, { deep: { $file: 1 } }], plain: 'x' });
      assert.equal(out.files[0].name, 'a.txt');
      assert.equal(out.files[0].type, 'text/plain');
      assert.equal(out.files[0].text, 'aaa');
      assert.equal(out.files[1].name, 'b.bin');
      assert.equal(out.files[1].type, 'image/png');
      assert.equal(out.files[1].sha256, S.expectedDigest(3000).sha256);
    });

    it('toTempFile() writes the whole file', async () => {
      const size = 3 * MB + 17;
      const body = S.multipartStream([
        S.manifestPart({ file: S.fileSentinel('F') }),
        S.filePart('F', new S.PatternSource(size)),
      ]);
      const res = await request(url(server, 'mp.temp'), {
        headers: { 'x-runner-token': TOKEN, 'content-type': S.MULTIPART_CT },
        body,
        timeoutMs: 60000,
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json().result, { bytesWritten: size, exists: true, ...S.expectedDigest(size) });
    });

    it('the file streams into the handler while the client is still sending it', async () => {
      const size = 2 * MB;
      const pre = Buffer.concat([
        S.multipartBuffer([S.manifestPart({ file: S.fileSentinel('F') })], { close: false }),
        Buffer.from(
          `--${S.BOUNDARY}\r\nContent-Disposition: form-data; name="file:F"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
      ]);
      const post = Buffer.from(`\r\n--${S.BOUNDARY}--\r\n`);
      const total = pre.length + size + post.length;
      const socket = await connectAndWrite(
        server,
        Buffer.concat([head('mp.firstChunk', MPH, [`Content-Length: ${total}`]), pre, S.patternBytes(256 * 1024)]),
      );
      const answered = answerOn(socket);
      await S.within(probe.firstChunk.promise, 10000, 'file bytes reaching the handler before the upload is complete');
      for (let off = 256 * 1024; off < size; off += 256 * 1024)
        socket.write(S.patternBytes(Math.min(256 * 1024, size - off), off));
      socket.write(post);
      const res = await S.within(answered, 20000, 'answer');
      socket.destroy();
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json().result, S.expectedDigest(size));
    });

    it('limits.multipart applies (fileSize) and the error is PAYLOAD_TOO_LARGE', async () => {
      const small = await startNative(
        { tasks: handlers },
        { auth: { token: TOKEN }, limits: { multipart: { fileSize: 1000 } } },
      );
      try {
        const body = S.multipartBuffer([
          S.manifestPart({ file: S.fileSentinel('F') }),
          S.filePart('F', S.patternBytes(5000)),
        ]);
        const res = await rawRequest(small, { method: 'POST', path: taskPath('mp.describe'), headers: MPH, body });
        assert.equal(res.status, 413, res.text);
        assert.deepEqual(res.json(), {
          ok: false,
          error: { message: 'File size limit exceeded', code: 'PAYLOAD_TOO_LARGE' },
        });
      } finally {
        await small.close();
      }
    });
  });
});
