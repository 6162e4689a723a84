'use strict';

// `ctx`, the second argument every handler gets: the request's metadata
// (read from the native side only when asked for), its abort signal, and its
// body and answer streams.

const { RequestBody, ResponseWriter, releaseBody } = require('./streams.js');

/**
 * The second argument every handler gets. Fields are read lazily. `calls`
 * is what a context asks of the server (lib/calls.js): `requestInfo`,
 * `signalFor`, `parse`, `streams` and `done`.
 */
class RequestContext {
  constructor(calls, ticket, streamedBody) {
    this._calls = calls;
    this._ticket = ticket;
    this._info = undefined;
    this._signal = undefined;
    this._context = undefined;
    /** Events: whether the caller asked for the final payload back. */
    this.returnPayload = false;
    this._req = undefined;
    this._res = undefined;
    // Raw and multipart bodies stream in; the server did not read them.
    if (streamedBody) this._req = new RequestBody(calls.streams, ticket, this, true);
  }

  /**
   * The request body as a Node `Readable` (with `headers`, `method`, `url`).
   * For `application/octet-stream` tasks it streams the raw body; for JSON
   * calls it is already consumed and ends at once.
   */
  get req() {
    if (this._req === undefined) this._req = new RequestBody(this._calls.streams, this._ticket, this, false);
    return this._req;
  }

  /** Write the answer yourself (`writeHead`, `setHeader`, `write`, `end`). */
  get res() {
    if (this._res === undefined) {
      this._res = new ResponseWriter(this._calls.streams, this._ticket, () => this._calls.done(this._ticket, this));
    }
    return this._res;
  }

  _load() {
    if (this._info === undefined) {
      const text = this._calls.requestInfo(this._ticket);
      this._info = text
        ? JSON.parse(text)
        : { method: undefined, url: undefined, path: undefined, requestId: undefined, headers: {} };
    }
    return this._info;
  }

  /** `x-runner-request-id` of this request (the client's, or a fresh UUID). */
  get requestId() {
    return this._load().requestId;
  }
  /** Request headers as Node presents them (lower-case names). */
  get headers() {
    return this._load().headers;
  }
  get method() {
    return this._load().method;
  }
  /** The request pathname. */
  get path() {
    return this._load().path;
  }
  /** The request target as sent, query included. */
  get url() {
    return this._load().url;
  }

  /** The `x-runner-context` map, parsed by the server's serializer. */
  get context() {
    if (this._context === undefined) {
      const raw = this.headers['x-runner-context'];
      let value = null;
      if (typeof raw === 'string' && raw !== '') {
        try {
          value = this._calls.parse(raw);
        } catch {
          value = null;
        }
      }
      this._context = value;
    }
    return this._context === null ? undefined : this._context;
  }

  /** Aborted when the client goes away before the answer. */
  get signal() {
    if (this._signal === undefined) this._signal = this._calls.signalFor(this._ticket);
    return this._signal;
  }
}

/** Whether the handler has begun writing its answer itself (`ctx.res`). */
function answerStarted(ctx) {
  return ctx._res !== undefined && ctx._res.headersSent;
}

/** Whether the handler has begun or ended writing its answer itself: its return value is then not sent. */
function answeredByHandler(ctx) {
  return ctx._res !== undefined && (ctx._res.headersSent || ctx._res.writableEnded);
}

/** Whether the handler asked for `ctx.signal`, so its ticket is watched for the client going away. */
function watchesSignal(ctx) {
  return ctx._signal !== undefined;
}

/** Lets go of the request body the handler was given, if any. */
function releaseRequest(ctx) {
  if (ctx._req !== undefined) releaseBody(ctx._req);
}

module.exports = { RequestContext, answerStarted, answeredByHandler, watchesSignal, releaseRequest };
