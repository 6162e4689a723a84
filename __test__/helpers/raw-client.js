'use strict';
// Raw HTTP/1.1 client over `net` sockets, so tests can send exactly the bytes they
// want (malformed targets, repeated headers, chunked / slow bodies, early disconnects)
// and see exactly what the server answered. Plus `request()` and `streamRequest()` on
// `http.request`, for answers read whole or as a stream.

const net = require('node:net');
const http = require('node:http');

const CRLF = '\r\n';

/**
 * Build the bytes of one request.
 * spec: { method, path, headers: [[name, value], ...] (duplicates allowed, values may be Buffers),
 *         body: string|Buffer|undefined, chunked: boolean, noHost: boolean,
 *         noContentLength: boolean, httpVersion: '1.1' }
 * Returns a Buffer (head + body) when not chunked; when chunked returns { head, chunks }.
 */
function buildRequest(spec) {
  const method = spec.method ?? 'POST';
  const target = spec.path ?? '/';
  const version = spec.httpVersion ?? '1.1';
  const headers = (spec.headers ?? []).map(([k, v]) => [k, v]);
  const has = (name) => headers.some(([k]) => k.toLowerCase() === name);
  const body =
    spec.body === undefined
      ? undefined
      : Buffer.isBuffer(spec.body)
        ? spec.body
        : Buffer.from(String(spec.body), 'utf8');
  if (!spec.noHost && !has('host')) headers.unshift(['Host', '127.0.0.1']);
  if (spec.chunked) {
    if (!has('transfer-encoding')) headers.push(['Transfer-Encoding', 'chunked']);
  } else if (body !== undefined && !spec.noContentLength && !has('content-length')) {
    headers.push(['Content-Length', String(body.length)]);
  }
  const headParts = [Buffer.from(`${method} ${target} HTTP/${version}${CRLF}`, 'latin1')];
  for (const [k, v] of headers) {
    headParts.push(Buffer.from(`${k}: `, 'latin1'));
    headParts.push(Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1'));
    headParts.push(Buffer.from(CRLF, 'latin1'));
  }
  headParts.push(Buffer.from(CRLF, 'latin1'));
  const head = Buffer.concat(headParts);
  if (spec.chunked) {
    const chunks = (spec.chunks ?? (body ? [body] : [])).map((c) =>
      Buffer.isBuffer(c) ? c : Buffer.from(String(c), 'utf8'),
    );
    return { head, chunks };
  }
  return body === undefined ? head : Buffer.concat([head, body]);
}

function encodeChunk(buf) {
  return Buffer.concat([Buffer.from(buf.length.toString(16) + CRLF, 'latin1'), buf, Buffer.from(CRLF, 'latin1')]);
}

/**
 * Incremental HTTP/1.1 response parser (one response).
 */
class ResponseParser {
  constructor(requestMethod) {
    this.requestMethod = (requestMethod ?? 'GET').toUpperCase();
    this.buf = Buffer.alloc(0);
    this.head = null;
    this.done = false;
    this.bodyChunks = [];
  }
  push(data) {
    this.buf = Buffer.concat([this.buf, data]);
    this._advance();
  }
  _advance() {
    while (!this.head) {
      const idx = this.buf.indexOf('\r\n\r\n');
      if (idx < 0) return;
      const headText = this.buf.subarray(0, idx).toString('latin1');
      this.buf = this.buf.subarray(idx + 4);
      const lines = headText.split('\r\n');
      const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
      if (!m) throw new Error(`Bad status line: ${JSON.stringify(lines[0])}`);
      const status = Number(m[2]);
      const rawHeaders = [];
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        rawHeaders.push([line.slice(0, c), line.slice(c + 1).trim()]);
      }
      if (status >= 100 && status < 200 && status !== 101) {
        // informational answer (e.g. 100 Continue): skip it and read the final one
        continue;
      }
      this.head = { httpVersion: m[1], status, statusText: m[3] ?? '', rawHeaders, headers: joinHeaders(rawHeaders) };
      const h = this.head.headers;
      if (this.requestMethod === 'HEAD' || status === 204 || status === 304) {
        this.mode = 'none';
      } else if (h['transfer-encoding'] && /chunked/i.test(h['transfer-encoding'])) {
        this.mode = 'chunked';
      } else if (h['content-length'] !== undefined) {
        this.mode = 'length';
        this.remaining = Number(h['content-length']);
      } else {
        this.mode = 'close';
      }
    }
    if (this.done) return;
    if (this.mode === 'none') {
      this.done = true;
    } else if (this.mode === 'length') {
      const take = Math.min(this.remaining, this.buf.length);
      this.bodyChunks.push(this.buf.subarray(0, take));
      this.buf = this.buf.subarray(take);
      this.remaining -= take;
      if (this.remaining === 0) this.done = true;
    } else if (this.mode === 'chunked') {
      for (;;) {
        const idx = this.buf.indexOf('\r\n');
        if (idx < 0) return;
        const size = parseInt(this.buf.subarray(0, idx).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('Bad chunk size');
        if (size === 0) {
          // trailers until empty line
          const end = this.buf.indexOf('\r\n\r\n', idx);
          if (end < 0 && !this.buf.subarray(idx).equals(Buffer.from('\r\n'))) {
            if (this.buf.length < idx + 4) return;
          }
          this.done = true;
          return;
        }
        if (this.buf.length < idx + 2 + size + 2) return;
        this.bodyChunks.push(this.buf.subarray(idx + 2, idx + 2 + size));
        this.buf = this.buf.subarray(idx + 2 + size + 2);
      }
    } else {
      this.bodyChunks.push(this.buf);
      this.buf = Buffer.alloc(0);
    }
  }
  finishOnClose() {
    if (this.head && this.mode === 'close') this.done = true;
  }
  result() {
    const body = Buffer.concat(this.bodyChunks);
    return {
      ...this.head,
      body,
      text: body.toString('utf8'),
      json() {
        return JSON.parse(body.toString('utf8'));
      },
    };
  }
}

function joinHeaders(rawHeaders) {
  const out = {};
  for (const [k, v] of rawHeaders) {
    const key = k.toLowerCase();
    out[key] = out[key] === undefined ? v : `${out[key]}, ${v}`;
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Send a request over a fresh TCP connection and read one response.
 * target: { port, host } or a base url string.
 * spec: see buildRequest, plus:
 *   raw: Buffer|string        send these bytes verbatim instead of building a request
 *   chunkDelayMs: number      delay between body chunks (chunked or `parts`)
 *   parts: Buffer[]           send the (non-chunked) request as these consecutive writes
 *   timeoutMs: number         fail when no full answer arrives in time (default 15000)
 * Resolves { status, statusText, headers, rawHeaders, body, text, json(), httpVersion }.
 * Rejects when the connection closes (or times out) before a full response.
 */
function rawRequest(target, spec) {
  const { host, port } = resolveTarget(target);
  const timeoutMs = spec.timeoutMs ?? 15000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const parser = new ResponseParser(spec.method ?? (spec.raw ? String(spec.raw).split(' ')[0] : 'POST'));
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`rawRequest timed out after ${timeoutMs}ms`)), timeoutMs);
    socket.on('data', (d) => {
      try {
        parser.push(d);
      } catch (e) {
        return finish(e);
      }
      if (parser.done) finish(null, parser.result());
    });
    socket.on('error', (e) => {
      // a reset after a complete answer is fine; otherwise report it
      if (parser.head && parser.done) return finish(null, parser.result());
      if (parser.head && !parser.done) return; // wait for close
      finish(e);
    });
    socket.on('close', () => {
      parser.finishOnClose();
      if (parser.head && parser.done) return finish(null, parser.result());
      finish(new Error(parser.head ? 'connection closed mid-response' : 'connection closed before any response'));
    });
    socket.on('connect', async () => {
      try {
        const write = (b) =>
          new Promise((res) => {
            if (settled || socket.destroyed) return res();
            socket.write(b, () => res());
          });
        if (spec.raw !== undefined) {
          await write(Buffer.isBuffer(spec.raw) ? spec.raw : Buffer.from(spec.raw, 'latin1'));
          return;
        }
        const built = buildRequest(spec);
        if (Buffer.isBuffer(built)) {
          if (spec.parts) {
            const head = buildRequest({ ...spec, body: Buffer.concat(spec.parts.map((p) => Buffer.from(p))) });
            const headLen = head.length - spec.parts.reduce((n, p) => n + Buffer.byteLength(p), 0);
            await write(head.subarray(0, headLen));
            for (const p of spec.parts) {
              if (settled) return;
              if (spec.chunkDelayMs) await sleep(spec.chunkDelayMs);
              await write(Buffer.from(p));
            }
          } else {
            await write(built);
          }
          return;
        }
        await write(built.head);
        for (const c of built.chunks) {
          if (settled) return;
          if (spec.chunkDelayMs) await sleep(spec.chunkDelayMs);
          await write(encodeChunk(c));
        }
        if (!settled && !spec.noFinalChunk) await write(Buffer.from('0\r\n\r\n', 'latin1'));
      } catch (e) {
        // writes racing a server-side close are fine; the read side decides
      }
    });
  });
}

/**
 * Open a connection and send a request (its head only when chunked), or `spec.raw` verbatim
 * (a Buffer, or a string as latin1); resolves with the socket once written, so tests can go on
 * writing, reading or destroy it.
 */
function openAndSend(target, spec) {
  const { host, port } = resolveTarget(target);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      const built =
        spec.raw !== undefined
          ? Buffer.isBuffer(spec.raw)
            ? spec.raw
            : Buffer.from(spec.raw, 'latin1')
          : buildRequest(spec);
      socket.write(Buffer.isBuffer(built) ? built : built.head, () => resolve(socket));
    });
    socket.on('error', reject);
  });
}

/**
 * Writes `parts` (strings as latin1, or Buffers) on a fresh connection to `port`, `gapMs`
 * apart, half-closing after the last one when `end`; resolves with everything the server
 * wrote (latin1) once it closes, and fails if it has not closed within `timeoutMs`.
 */
function sendUntilClose(port, parts, { end = false, gapMs = 20, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const got = [];
    const guard = setTimeout(() => {
      sock.destroy();
      reject(
        new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(got).toString('latin1'))}`),
      );
    }, timeoutMs);
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(guard);
      resolve(Buffer.concat(got).toString('latin1'));
    });
    sock.on('connect', async () => {
      for (const [i, p] of [].concat(parts).entries()) {
        if (i > 0) await sleep(gapMs);
        sock.write(p);
      }
      if (end) sock.end();
    });
  });
}

function resolveTarget(target) {
  if (typeof target === 'string') {
    const u = new URL(target);
    return { host: u.hostname, port: Number(u.port) };
  }
  if (target && typeof target.url === 'string' && target.port === undefined) return resolveTarget(target.url);
  return { host: target.host ?? '127.0.0.1', port: target.port };
}

/** Reads a Readable to its end into one Buffer. */
async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

/**
 * A request over http.request (no keep-alive pooling), POST by default, with a Buffer / string /
 * Readable body. Resolves on the response head: { status, headers, res, req } (res: the
 * IncomingMessage, unread). The request is aborted with `abort()` on the returned promise.
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

/**
 * streamRequest and read the whole answer (a body that is neither a Buffer, a string nor a
 * Readable is sent as JSON): { status, headers, body, text, json() }.
 */
async function request(url, { body, timeoutMs = 15000, ...opts } = {}) {
  const sendable =
    body === undefined || Buffer.isBuffer(body) || typeof body === 'string' || typeof body.pipe === 'function';
  const { status, headers, res } = await streamRequest(url, {
    ...opts,
    body: sendable ? body : JSON.stringify(body),
    timeoutMs,
  });
  const buf = await readAll(res);
  return { status, headers, body: buf, text: buf.toString('utf8'), json: () => JSON.parse(buf.toString('utf8')) };
}

module.exports = {
  buildRequest,
  rawRequest,
  openAndSend,
  sendUntilClose,
  request,
  streamRequest,
  readAll,
  ResponseParser,
  joinHeaders,
  sleep,
};
