'use strict';

// Streamed bodies on the JS side: the request body a handler reads itself
// (`ctx.req`) and the answer a handler writes itself (`ctx.res`, or a
// returned Readable). The native side moves the bytes with backpressure.

const { Readable } = require('node:stream');
const { EventEmitter } = require('node:events');

/** Headers a handler may not set on a streamed answer (as the reference). */
const BLOCKED_HEADERS = new Set([
  'set-cookie',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'x-content-type-options',
  'x-frame-options',
]);

const isReadable = (v) => !!v && typeof v.pipe === 'function';
const isStreamingResponse = (v) => !!v && typeof v === 'object' && 'stream' in v && isReadable(v.stream);

/**
 * The calls whose request body is streaming in or whose answer is streaming
 * out, by ticket, and the native calls that move their bytes. The batch
 * dispatcher tells it what arrived (chunks, ends, resumes, clients gone).
 */
class StreamTable {
  constructor(native) {
    this._native = native;
    this._bodies = new Map(); // ticket -> RequestBody being streamed in
    this._answers = new Map(); // ticket -> { resume, gone } of a streamed answer
  }

  /** A chunk of a streamed request body arrived. */
  bodyChunk(ticket, bytes) {
    const body = this._bodies.get(ticket);
    if (body) body._chunk(bytes);
  }

  /** A streamed request body ended. */
  bodyEnd(ticket) {
    const body = this._bodies.get(ticket);
    if (body) body._end();
  }

  /** A streamed request body broke off (its client went away): it fails with `reason()`. */
  bodyFailed(ticket, reason) {
    const body = this._bodies.get(ticket);
    if (body) body._fail(reason());
  }

  /** The native side has room again for a paused streamed answer. */
  resume(ticket) {
    const out = this._answers.get(ticket);
    if (out) out.resume();
  }

  /**
   * Forgets a streamed answer the native side has already dropped, and
   * returns its `{ resume, gone }` (or undefined) for the caller to stop.
   */
  detachAnswer(ticket) {
    const out = this._answers.get(ticket);
    this._answers.delete(ticket);
    return out;
  }

  /** The client went away while an answer streamed out: stop its source and end it. */
  abortAnswer(ticket) {
    const out = this._answers.get(ticket);
    if (out) {
      this._answers.delete(ticket);
      out.gone();
      this._native.endStream(ticket);
    }
  }

  /** Answers with a stream: a Readable or `{ stream, status, contentType, headers }`. */
  pipeAnswer(ticket, value, onDone) {
    let source = value;
    let status = 200;
    let contentType = 'application/octet-stream';
    let headers;
    if (!isReadable(value)) {
      source = value.stream;
      if (value.status !== undefined) status = value.status;
      if (value.contentType !== undefined) contentType = value.contentType;
      headers = value.headers;
    }
    const list = headerList(contentType, headers);
    if (!this._native.startStream(ticket, status, JSON.stringify(list), false)) {
      if (typeof source.destroy === 'function') source.destroy();
      onDone();
      return;
    }
    pipeOut(this, ticket, source, onDone);
  }
}

/** Let go of a request body: its handler is done with it (called once its call is answered). */
function releaseBody(body) {
  body._release();
}

/** The raw request body, pulled from the native side chunk by chunk. */
class RequestBody extends Readable {
  constructor(streams, ticket, ctx, streamed) {
    super();
    this._streams = streams;
    this._ticket = ticket;
    this._ctx = ctx;
    this._streamed = streamed;
    if (streamed) streams._bodies.set(ticket, this);
    else this.push(null);
  }

  get headers() {
    return this._ctx.headers;
  }
  get method() {
    return this._ctx.method;
  }
  get url() {
    return this._ctx.url;
  }

  _read() {
    if (this._streamed) this._streams._native.readMore(this._ticket);
  }

  _destroy(err, callback) {
    this._release();
    callback(err);
  }

  _release() {
    if (this._streamed) {
      this._streamed = false;
      this._streams._bodies.delete(this._ticket);
      this._streams._native.releaseBody(this._ticket);
    }
  }

  /** A chunk, the end, or a failure arrived from the native side. */
  _chunk(buf) {
    this.push(buf);
  }

  _end() {
    this._streamed = false;
    this._streams._bodies.delete(this._ticket);
    this.push(null);
  }

  _fail(err) {
    this._streamed = false;
    this._streams._bodies.delete(this._ticket);
    // As IncomingMessage: 'aborted', then an 'error' only for whoever listens
    // for one (a bare pipe must not crash the process).
    this.emit('aborted');
    this.destroy(this.listenerCount('error') > 0 ? err : undefined);
  }
}

function headerList(contentType, headers) {
  const list = [];
  if (contentType !== undefined && contentType !== null) list.push(['content-type', String(contentType)]);
  if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (BLOCKED_HEADERS.has(lower) || (lower === 'content-type' && contentType !== undefined)) continue;
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const v of value) list.push([name, String(v)]);
      else list.push([name, String(value)]);
    }
  }
  return list;
}

/**
 * Pipes a Readable into a started streamed answer: pauses when the native
 * side says its queue is full, resumes on its signal, ends the answer
 * cleanly when the source ends or fails, and destroys the source when the
 * client goes away.
 */
function pipeOut(streams, ticket, source, onDone) {
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    source.removeListener('data', onData);
    streams._answers.delete(ticket);
    streams._native.endStream(ticket);
    onDone();
  };
  const onData = (chunk) => {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(typeof chunk === 'string' ? chunk : String(chunk));
    if (buf.length === 0) return;
    if (!streams._native.writeChunk(ticket, buf)) source.pause();
  };
  streams._answers.set(ticket, {
    resume: () => source.resume(),
    gone: () => {
      done = true;
      source.removeListener('data', onData);
      if (typeof source.destroy === 'function') source.destroy();
      onDone();
    },
  });
  source.on('data', onData);
  source.once('end', finish);
  source.once('error', finish);
  if (typeof source.resume === 'function') source.resume();
}

/**
 * `ctx.res`: write the answer yourself, as with Node's `ServerResponse`
 * (`statusCode`, `setHeader`, `writeHead`, `write`, `end`, `'drain'`).
 * Once used, the handler's return value is not sent.
 */
class ResponseWriter extends EventEmitter {
  constructor(streams, ticket, onDone) {
    super();
    this._streams = streams;
    this._ticket = ticket;
    this._onDone = onDone;
    this._headers = new Map();
    this.statusCode = 200;
    this.headersSent = false;
    this.writableEnded = false;
    this.writableNeedDrain = false;
  }

  setHeader(name, value) {
    if (this.headersSent) throw new Error('Cannot set headers after they are sent to the client');
    this._headers.set(String(name).toLowerCase(), [String(name), value]);
    return this;
  }

  getHeader(name) {
    const entry = this._headers.get(String(name).toLowerCase());
    return entry ? entry[1] : undefined;
  }

  hasHeader(name) {
    return this._headers.has(String(name).toLowerCase());
  }

  removeHeader(name) {
    this._headers.delete(String(name).toLowerCase());
  }

  getHeaders() {
    const out = {};
    for (const [key, [, value]] of this._headers) out[key] = value;
    return out;
  }

  writeHead(status, reasonOrHeaders, maybeHeaders) {
    this.statusCode = status;
    const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(headers[i], headers[i + 1]);
    } else if (headers && typeof headers === 'object') {
      for (const [k, v] of Object.entries(headers)) this.setHeader(k, v);
    }
    return this;
  }

  _start() {
    if (this.headersSent) return;
    this.headersSent = true;
    const list = [];
    for (const [, [name, value]] of this._headers) {
      if (Array.isArray(value)) for (const v of value) list.push([name, String(v)]);
      else if (value !== undefined) list.push([name, String(value)]);
    }
    this._streams._answers.set(this._ticket, {
      resume: () => {
        this.writableNeedDrain = false;
        this.emit('drain');
      },
      gone: () => {
        this.writableEnded = true;
        this.emit('close');
        this._onDone();
      },
    });
    // Bare: like a ServerResponse written by hand, no CORS or security headers.
    this._streams._native.startStream(this._ticket, this.statusCode, JSON.stringify(list), true);
  }

  write(chunk, encoding, callback) {
    if (typeof encoding === 'function') callback = encoding;
    if (this.writableEnded) return false;
    this._start();
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(String(chunk), typeof encoding === 'string' ? encoding : 'utf8');
    const ok = buf.length === 0 ? true : this._streams._native.writeChunk(this._ticket, buf);
    if (!ok) this.writableNeedDrain = true;
    if (typeof callback === 'function') process.nextTick(callback);
    return ok;
  }

  end(chunk, encoding, callback) {
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
    }
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (this.writableEnded) return this;
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    this._start();
    this.writableEnded = true;
    this._streams._answers.delete(this._ticket);
    this._streams._native.endStream(this._ticket);
    this.emit('finish');
    this.emit('close');
    this._onDone();
    if (typeof callback === 'function') process.nextTick(callback);
    return this;
  }
}

module.exports = {
  StreamTable,
  RequestBody,
  ResponseWriter,
  releaseBody,
  headerList,
  isReadable,
  isStreamingResponse,
  BLOCKED_HEADERS,
};
