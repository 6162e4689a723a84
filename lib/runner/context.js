'use strict';

// What a task served by nativeExposure sees of its request: the value of
// `useExposureContext()`, and the app's async contexts hydrated from the
// `x-runner-context` header (the reference's withExposureContext and
// withUserContexts).

const { asyncContext } = require('./peer.js');
const { clientClosedError } = require('./errors.js');

const EXPOSURE_CONTEXT_ID = 'platform.node.ctx.exposureRequest';

// Runner's async contexts share one AsyncLocalStorage keyed by context id, so
// providing under the reference's id is what `useExposureContext()` reads.
const ExposureRequestContext = asyncContext({ id: EXPOSURE_CONTEXT_ID });

function firstHeader(value) {
  if (Array.isArray(value)) return value[0];
  return typeof value === 'string' ? value : undefined;
}

/**
 * What `useExposureContext()` returns: `{ req, res, url, basePath, headers,
 * method, signal }`, read lazily from the native request (getters on the
 * prototype, so nothing is fetched from the native side unless a task asks).
 * `req` is the request body as a Node `Readable` (the raw stream for
 * `application/octet-stream` calls); `res` writes a streamed answer
 * (`writeHead`, `setHeader`, `write`, `end`).
 */
class ExposureRequest {
  constructor(ctx, basePath) {
    this._ctx = ctx;
    this._url = undefined;
    this._signal = undefined;
    this.basePath = basePath;
  }

  get req() {
    return this._ctx.req;
  }

  get res() {
    return this._ctx.res;
  }

  /** A WHATWG URL of the request target (base `http://localhost`), as the reference's. */
  get url() {
    if (this._url === undefined) this._url = new URL(this._ctx.url || '/', 'http://localhost');
    return this._url;
  }

  get headers() {
    return this._ctx.headers;
  }

  get method() {
    return this._ctx.method;
  }

  /** Aborted when the client goes away, with Runner's cancellation error as reason. */
  get signal() {
    if (this._signal === undefined) {
      const controller = new AbortController();
      const native = this._ctx.signal;
      const abort = () => controller.abort(clientClosedError());
      if (native.aborted) abort();
      else native.addEventListener('abort', abort, { once: true });
      this._signal = controller.signal;
    }
    return this._signal;
  }
}

/**
 * `fn` wrapped so that it runs inside the async contexts the request's
 * `x-runner-context` header carries (a serialized `{contextId: value}` map),
 * when `allowAsyncContext`; unparsable headers and values are ignored.
 */
function withUserContexts(store, serializer, ctx, fn, allowAsyncContext) {
  let wrapped = fn;
  if (allowAsyncContext && store.asyncContexts.size > 0) {
    const headerText = firstHeader(ctx.headers['x-runner-context']);
    if (headerText) {
      try {
        const map = serializer.parse(headerText);
        for (const [id, context] of store.asyncContexts.entries()) {
          const raw = map[id];
          if (typeof raw === 'string') {
            try {
              const value = context.parse(raw);
              const prev = wrapped;
              wrapped = async () => await context.provide(value, prev);
            } catch {
              // an unparsable context value is skipped
            }
          }
        }
      } catch {
        // an unparsable header is ignored
      }
    }
  }
  return wrapped;
}

module.exports = { ExposureRequestContext, ExposureRequest, withUserContexts };
