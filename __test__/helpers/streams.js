'use strict';
// Helpers for the streams tests (streams.*.test.js):
//  - deterministic byte sources generated on the fly (PatternSource) and a running digest
//    (byte count + sha256) to check that bytes arrive intact without holding them;
//  - a multipart/form-data encoder (buffer or streamed, file parts may be Readables);
//  - a streaming HTTP client (streamRequest) whose request body may be a Readable;
//  - the same Runner app built for nodeExposure and nativeExposure (startStreamsApp);
//  - when run as a script (`node streams.js memory-server <standalone|runner>`), a server in a
//    child process for the memory tests, so the parent can read its RSS from /proc.

const http = require('node:http');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { Readable, Transform } = require('node:stream');
const { EventEmitter } = require('node:events');

// The one token of the test suites.
const { TOKEN } = require('./fixtures');

// ---------------------------------------------------------------------------------------------
// deterministic bytes

const PERIOD = 65521; // prime: a chunk of 64 KiB never lines up with the pattern
const PATTERN = (() => {
  const b = Buffer.allocUnsafe(PERIOD * 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  b.copy(b, PERIOD, 0, PERIOD);
  return b;
})();

/** `len` (<= PERIOD) pattern bytes starting at absolute offset `offset` (a view, no copy). */
function patternSlice(offset, len) {
  const start = offset % PERIOD;
  return PATTERN.subarray(start, start + len);
}

/** The first `n` bytes of the pattern as one Buffer (for small payloads). */
function patternBytes(n, offset = 0) {
  const out = Buffer.allocUnsafe(n);
  let done = 0;
  while (done < n) {
    const len = Math.min(PERIOD, n - done);
    patternSlice(offset + done, len).copy(out, done);
    done += len;
  }
  return out;
}

/**
 * A Readable of `total` pattern bytes (Infinity: never ends), generated as it is read.
 * `produced` counts what was pushed so far; `destroyedAt` records when it was destroyed.
 */
class PatternSource extends Readable {
  constructor(total, { chunkSize = 64 * 1024, highWaterMark } = {}) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.total = total;
    this.chunkSize = Math.min(chunkSize, PERIOD);
    this.produced = 0;
  }

  _read() {
    if (this.produced >= this.total) {
      this.push(null);
      return;
    }
    const len = Math.min(this.chunkSize, this.total - this.produced);
    const chunk = patternSlice(this.produced, len);
    this.produced += len;
    this.push(chunk);
  }
}

/** Running byte count + sha256. */
class Digest {
  constructor() {
    this.bytes = 0;
    this.hash = crypto.createHash('sha256');
  }
  update(chunk) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    this.bytes += b.length;
    this.hash.update(b);
    return this;
  }
  result() {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

const expectedCache = new Map();
/** Digest of the first `n` pattern bytes. */
function expectedDigest(n) {
  if (!expectedCache.has(n)) {
    const d = new Digest();
    for (let off = 0; off < n; off += PERIOD) d.update(patternSlice(off, Math.min(PERIOD, n - off)));
    expectedCache.set(n, d.result());
  }
  return expectedCache.get(n);
}

function digestOf(buf) {
  return new Digest().update(buf).result();
}

/** Reads a Readable to the end into a Digest. */
async function digestStream(stream) {
  const d = new Digest();
  for await (const chunk of stream) d.update(chunk);
  return d.result();
}

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

/** ASCII a-z to A-Z, byte for byte (other bytes untouched, length kept). */
function upperBytes(chunk) {
  const out = Buffer.from(chunk);
  for (let i = 0; i < out.length; i++) if (out[i] >= 0x61 && out[i] <= 0x7a) out[i] -= 0x20;
  return out;
}

function upperCase() {
  return new Transform({
    transform(chunk, _enc, cb) {
      cb(null, upperBytes(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
    },
  });
}

/** Resolves on the first of `events` on `emitter` (listeners removed afterwards). */
function firstEvent(emitter, events) {
  return new Promise((resolve) => {
    const handlers = events.map((name) => {
      const h = (...args) => {
        events.forEach((n, i) => emitter.removeListener(n, handlers[i]));
        resolve([name, ...args]);
      };
      emitter.on(name, h);
      return h;
    });
  });
}

// ---------------------------------------------------------------------------------------------
// multipart

const BOUNDARY = 'StreamsTestBoundary-7e3f';
const buf = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x), 'utf8'));

function partHead(p, boundary) {
  let disposition = `Content-Disposition: form-data; name="${p.name}"`;
  if (p.filename !== undefined) disposition += `; filename="${p.filename}"`;
  const lines = [`--${boundary}`];
  if (p.headersFirst) for (const [k, v] of p.headersFirst) lines.push(`${k}: ${v}`);
  lines.push(disposition);
  if (p.type !== undefined) lines.push(`Content-Type: ${p.type}`);
  if (p.headers) for (const [k, v] of p.headers) lines.push(`${k}: ${v}`);
  return buf(`${lines.join('\r\n')}\r\n\r\n`);
}

/**
 * parts: { name, value } (field) | { name, filename?, type?, headers?, data } (file part;
 * data: string | Buffer | Readable) | { raw } (verbatim bytes).
 * Returns an async iterable of Buffers.
 */
async function* multipartChunks(parts, { boundary = BOUNDARY, close = true } = {}) {
  for (const p of parts) {
    if (p.raw !== undefined) {
      yield buf(p.raw);
      continue;
    }
    yield partHead(p, boundary);
    const data = p.data ?? p.value;
    if (data && typeof data.pipe === 'function') {
      for await (const c of data) yield buf(c);
    } else {
      yield buf(data);
    }
    yield buf('\r\n');
  }
  if (close) yield buf(`--${boundary}--\r\n`);
}

/** A whole multipart body (only Buffer / string data). */
function multipartBuffer(parts, opts = {}) {
  const out = [];
  const boundary = opts.boundary ?? BOUNDARY;
  for (const p of parts) {
    if (p.raw !== undefined) {
      out.push(buf(p.raw));
      continue;
    }
    out.push(partHead(p, boundary), buf(p.data ?? p.value), buf('\r\n'));
  }
  if (opts.close !== false) out.push(buf(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

const multipartStream = (parts, opts) => Readable.from(multipartChunks(parts, opts), { objectMode: false });

const fileSentinel = (id, meta) =>
  meta === undefined ? { $runnerFile: 'File', id } : { $runnerFile: 'File', id, meta };
const manifestPart = (input, serialize = JSON.stringify) => ({ name: '__manifest', value: serialize({ input }) });
const filePart = (id, data, filename = `${id}.bin`, type = 'application/octet-stream') => ({
  name: `file:${id}`,
  filename,
  type,
  data,
});
const MULTIPART_CT = `multipart/form-data; boundary=${BOUNDARY}`;

// ---------------------------------------------------------------------------------------------
// streaming HTTP client

/**
 * POST (by default) with a Buffer / string / Readable body. Resolves on the response head:
 * { status, headers, res } (res: the IncomingMessage, unread). The request is aborted with
 * `abort()`.
 */
function streamRequest(url, { method = 'POST', headers = {}, body, timeoutMs = 60000 } = {}) {
  let req;
  const promise = new Promise((resolve, reject) => {
    req = http.request(url, { method, headers, agent: false }, (res) =>
      resolve({ status: res.statusCode, headers: res.headers, res, req }),
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (typeof body.pipe === 'function') {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body);
  });
  promise.abort = () => req.destroy();
  return promise;
}

/** streamRequest and read the whole answer. */
async function fullRequest(url, opts) {
  const { status, headers, res } = await streamRequest(url, opts);
  const body = await readAll(res);
  return { status, headers, body, text: body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) };
}

// ---------------------------------------------------------------------------------------------
// small utilities

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Rejects when `promise` has not settled after `ms` (a generous "finished" bound). */
function within(promise, ms, what = 'operation') {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms}ms`)), ms);
    }),
  ]);
}

/**
 * Waits (up to `ms` overall) for each named promise; resolves with { name: true|false } telling
 * which ones settled, so one assertion can show all of them.
 */
async function whichSettle(named, ms) {
  const out = {};
  for (const k of Object.keys(named)) out[k] = false;
  await Promise.race([
    Promise.all(
      Object.entries(named).map(([k, p]) =>
        Promise.resolve(p).then(
          () => {
            out[k] = true;
          },
          () => {
            out[k] = true;
          },
        ),
      ),
    ),
    sleep(ms),
  ]);
  return { ...out };
}

/** VmRSS of a process in bytes (Linux). */
function rssOf(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(text);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples rssOf(pid) every `intervalMs`; stop() returns { peak, samples }. */
function sampleRss(pid, intervalMs = 50) {
  let peak = 0;
  let samples = 0;
  const take = () => {
    try {
      const v = rssOf(pid);
      samples += 1;
      if (v > peak) peak = v;
    } catch {
      /* process gone */
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peak, samples };
    },
  };
}

const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// the Runner app (same definition for nodeExposure and nativeExposure)

const isInputFile = (v) =>
  !!v && typeof v === 'object' && typeof v.resolve === 'function' && typeof v.stream === 'function';

/** Replaces every InputFile in `input` by a description of it (its content read to the end). */
async function describeFiles(input, { readVia = 'resolve' } = {}) {
  const files = [];
  const mark = (v) => {
    if (isInputFile(v)) {
      const i = files.indexOf(v); // the same file may appear twice: read it once
      return { $file: i >= 0 ? i : files.push(v) - 1 };
    }
    if (Array.isArray(v)) return v.map(mark);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v)) o[k] = mark(v[k]);
      return o;
    }
    return v;
  };
  const shape = mark(input);
  const described = [];
  for (const f of files) {
    const stream = readVia === 'stream' ? f.stream() : (await f.resolve()).stream;
    const content = await readAll(stream);
    described.push({
      name: f.name,
      type: f.type,
      size: f.size ?? null,
      lastModified: f.lastModified ?? null,
      extra: f.extra ?? null,
      bytes: content.length,
      sha256: digestOf(content).sha256,
      text: content.length <= 256 ? content.toString('latin1') : null,
    });
  }
  return { inputType: input === undefined ? 'undefined' : typeof input, shape, files: described };
}

/** Events from the app's probe tasks (st.hold, st.infinite): 'record' (rec) on each change. */
const probes = new EventEmitter();

function buildStreamsApp(exposureWith) {
  // eslint-disable-next-line global-require
  const { r, useExposureContext } = require('@bluelibs/runner');
  const rejected = r
    .error('st.errors.rejected')
    .httpCode(422)
    .format((d) => `Rejected: ${d.why}`)
    .build();
  const t = (id, fn) => r.task(id).run(fn).build();
  const ex = () => useExposureContext();
  const tasks = [
    // raw body in
    t('st.rawDigest', async (input) => {
      const { req } = ex();
      const d = await digestStream(req);
      return {
        inputType: input === undefined ? 'undefined' : typeof input,
        contentType: req.headers['content-type'] ?? null,
        ...d,
      };
    }),
    t('st.rawText', async () => (await readAll(ex().req)).toString('utf8')),
    // raw body in, stream out
    t('st.upper', async () => ex().req.pipe(upperCase())),
    // stream out
    t('st.readable', async (input) => Readable.from((input && input.parts) || ['hello ', 'streamed ', 'world'])),
    t('st.streamObj', async (input) => ({
      stream: Readable.from((input && input.parts) || ['a', 'b', 'c']),
      ...(input && input.status !== undefined ? { status: input.status } : {}),
      ...(input && input.contentType !== undefined ? { contentType: input.contentType } : {}),
      ...(input && input.headers !== undefined ? { headers: input.headers } : {}),
    })),
    t('st.download', async (input) => new PatternSource(input.size)),
    // writing through res
    t('st.resWrite', async (input) => {
      const { res } = ex();
      res.writeHead(input.status ?? 200, input.headers ?? {});
      for (const p of input.parts ?? []) res.write(p);
      res.end(input.last);
      return { ignored: true };
    }),
    t('st.resSetHeader', async () => {
      const { res } = ex();
      res.statusCode = 201;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.setHeader('x-written-by', 'task');
      res.write('line 1\n');
      res.end('line 2\n');
      return 'ignored';
    }),
    t('st.throwMidStream', async () => {
      const { res } = ex();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial ');
      await sleep(20);
      throw new Error('boom mid-stream');
    }),
    // multipart
    t('st.files', async (input) => describeFiles(input)),
    t('st.filesViaStream', async (input) => describeFiles(input, { readVia: 'stream' })),
    t('st.fileTemp', async (input) => {
      const { path: p, bytesWritten } = await input.file.toTempFile();
      const content = await fs.promises.readFile(p);
      await fs.promises.unlink(p);
      return { bytesWritten, bytes: content.length, sha256: digestOf(content).sha256, name: input.file.name };
    }),
    t('st.filesThenReject', async (input) => {
      await describeFiles(input);
      rejected.throw({ why: 'files were read' });
    }),
    t('st.filesThenStream', async (input) => {
      const d = await describeFiles(input);
      return { stream: Readable.from([JSON.stringify(d)]), contentType: 'application/x-ndjson' };
    }),
    // probes for client disconnects (records observed by the tests through `probes`)
    t('st.hold', async () => {
      const { req, signal } = ex();
      const rec = { task: 'st.hold', signalAborted: false, reqClosed: false, outcome: null, received: 0 };
      const emit = () => probes.emit('record', rec);
      signal.addEventListener('abort', () => {
        rec.signalAborted = true;
        emit();
      });
      req.on('close', () => {
        rec.reqClosed = true;
        emit();
      });
      try {
        for await (const c of req) {
          rec.received += c.length;
          emit();
        }
        rec.outcome = 'ended';
      } catch {
        rec.outcome = 'error';
      }
      emit();
      return { received: rec.received };
    }),
    t('st.infinite', async () => {
      const { signal } = ex();
      const src = new PatternSource(Infinity);
      const rec = { task: 'st.infinite', signalAborted: false, sourceDestroyed: false, source: src };
      const emit = () => probes.emit('record', rec);
      signal.addEventListener('abort', () => {
        rec.signalAborted = true;
        emit();
      });
      src.on('close', () => {
        rec.sourceDestroyed = true;
        emit();
      });
      emit();
      return src;
    }),
    // plain JSON, as a control
    t('st.add', async ({ a, b }) => a + b),
  ];
  return {
    app: r
      .resource('st.app')
      .register([exposureWith, rejected, ...tasks])
      .build(),
    errors: { rejected },
  };
}

/**
 * Runs the streams app exposed by `exposure` (nodeExposure or nativeExposure) with `http`
 * (listen, auth and open exposure are filled in). Returns { url, baseUrl, port, close, runtime }.
 */
async function startStreamsApp(exposure, http = {}) {
  // eslint-disable-next-line global-require
  const { run, nodeExposure } = require('@bluelibs/runner');
  const cfg = {
    auth: { token: TOKEN },
    dangerouslyAllowOpenExposure: true,
    ...http,
    listen: { port: 0, host: '127.0.0.1' },
  };
  const { app, errors } = buildStreamsApp(exposure.with({ http: cfg }));
  const runtime = await run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });
  const value = runtime.getResourceValue(exposure);
  const port = exposure === nodeExposure ? value.server.address().port : value.port;
  let closed = false;
  return {
    kind: exposure === nodeExposure ? 'nodeExposure' : 'nativeExposure',
    runtime,
    value,
    errors,
    port,
    host: '127.0.0.1',
    url: `http://127.0.0.1:${port}`,
    baseUrl: `http://127.0.0.1:${port}/__runner`,
    async close() {
      if (closed) return;
      closed = true;
      if (exposure === nodeExposure) value.server.closeAllConnections?.();
      await runtime.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// child-process server for the memory tests

async function memoryServer(mode) {
  const limits = { multipart: { fileSize: 1024 * MB, files: 4, fields: 10, fieldSize: MB } };
  const sink = async (req) => digestStream(req);
  const uploadDigest = async (input) => {
    const { stream } = await input.file.resolve();
    const d = await digestStream(stream);
    return { ...d, name: input.file.name };
  };
  let port;
  if (mode === 'standalone') {
    // eslint-disable-next-line global-require
    const { TunnelServer } = require('../..');
    const server = new TunnelServer({
      port: 0,
      host: '127.0.0.1',
      auth: { token: TOKEN },
      limits,
      logger: { error() {}, warn() {} },
    });
    server.registerTask('mem.sink', async (_input, ctx) => sink(ctx.req));
    server.registerTask('mem.upload', async (input) => uploadDigest(input));
    server.registerTask('mem.download', async (input) => ({
      stream: new PatternSource(input.size),
      contentType: 'application/octet-stream',
    }));
    port = (await server.listen()).port;
  } else {
    // eslint-disable-next-line global-require
    const { r, run, useExposureContext } = require('@bluelibs/runner');
    // eslint-disable-next-line global-require
    const { nativeExposure } = require('../../runner');
    const app = r
      .resource('mem.app')
      .register([
        nativeExposure.with({
          http: {
            listen: { port: 0, host: '127.0.0.1' },
            auth: { token: TOKEN },
            dangerouslyAllowOpenExposure: true,
            limits,
          },
        }),
        r
          .task('mem.sink')
          .run(async () => sink(useExposureContext().req))
          .build(),
        r
          .task('mem.upload')
          .run(async (input) => uploadDigest(input))
          .build(),
        r
          .task('mem.download')
          .run(async (input) => new PatternSource(input.size))
          .build(),
      ])
      .build();
    const runtime = await run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });
    port = runtime.getResourceValue(nativeExposure).port;
  }
  process.on('message', (m) => {
    if (m === 'gc' && global.gc) {
      global.gc();
      process.send({ gc: true });
    } else if (m === 'mem') {
      process.send({ mem: process.memoryUsage() });
    } else if (m === 'exit') {
      process.exit(0);
    }
  });
  process.send({ port });
}

if (require.main === module && process.argv[2] === 'memory-server') {
  memoryServer(process.argv[3] || 'standalone').catch((e) => {
    // eslint-disable-next-line no-console
    console.error(e);
    process.exit(1);
  });
}

module.exports = {
  TOKEN,
  MB,
  PERIOD,
  patternSlice,
  patternBytes,
  PatternSource,
  Digest,
  expectedDigest,
  digestOf,
  digestStream,
  readAll,
  upperCase,
  upperBytes,
  firstEvent,
  BOUNDARY,
  MULTIPART_CT,
  multipartChunks,
  multipartBuffer,
  multipartStream,
  fileSentinel,
  manifestPart,
  filePart,
  streamRequest,
  fullRequest,
  sleep,
  waitFor,
  within,
  whichSettle,
  rssOf,
  sampleRss,
  isInputFile,
  describeFiles,
  buildStreamsApp,
  probes,
  startStreamsApp,
};
