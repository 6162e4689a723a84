'use strict';
// Helpers for the streams tests (streams.*.test.js):
//  - deterministic byte sources generated on the fly (PatternSource) and a running digest
//    (byte count + sha256) to check that bytes arrive intact without holding them;
//  - a multipart/form-data encoder (buffer or streamed, file parts may be Readables);
//  - a description of the files in a call's input (describeFiles).
// The Runner app of the streams suites is in helpers/streams-app.js.

const fs = require('node:fs');
const crypto = require('node:crypto');
const { Readable, Transform } = require('node:stream');

// The one token of the test suites.
const { TOKEN } = require('./fixtures');
const { readAll, sleep } = require('./raw-client');

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
// small utilities

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
// the files of a call's input

const isInputFile = (v) =>
  !!v && typeof v === 'object' && typeof v.resolve === 'function' && typeof v.stream === 'function';

/**
 * `input` with every InputFile replaced by `{ $file: i }`, i its index in `files` (the same file
 * twice, the same i). With `protos`, each object also says whether its prototype is Object's
 * (`$proto`).
 */
function fileShape(input, { protos = false } = {}) {
  const files = [];
  const mark = (v) => {
    if (isInputFile(v)) {
      const i = files.indexOf(v); // the same file may appear twice: read it once
      return { $file: i >= 0 ? i : files.push(v) - 1 };
    }
    if (Array.isArray(v)) return v.map(mark);
    if (v && typeof v === 'object') {
      const proto = Object.getPrototypeOf(v);
      const o = protos ? { $proto: proto === Object.prototype ? 'Object' : String(proto) } : {};
      for (const k of Object.keys(v)) o[k] = mark(v[k]);
      return o;
    }
    return v;
  };
  return { shape: mark(input), files };
}

/** Replaces every InputFile in `input` by a description of it (its content read to the end). */
async function describeFiles(input, { readVia = 'resolve' } = {}) {
  const { shape, files } = fileShape(input);
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
  sleep,
  waitFor,
  within,
  whichSettle,
  rssOf,
  sampleRss,
  isInputFile,
  fileShape,
  describeFiles,
};
