'use strict';

// Running a task or event call and answering it: the input taken from the
// body, the handler run with its context, and its result or error turned
// into an answer (lib/outcome.js) queued on the answer writer (lib/wire.js).

const { KIND_TASK, BODY_JSON, BODY_MULTIPART } = require('../native.js');
const { RequestContext, answerStarted, answeredByHandler, watchesSignal, releaseRequest } = require('./context.js');
const { isReadable, isStreamingResponse } = require('./streams.js');
const { logError } = require('./logging.js');
const {
  defaultAbortReason,
  isCancellation,
  ProtocolError,
  protocolErrorMember,
  protocolErrorStatus,
  resolveTypedError,
  typedErrorMember,
  responseStatus,
  responseErrorMember,
  notFoundMember,
} = require('./outcome.js');

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

let multipart = null;
function multipartParser() {
  if (!multipart) multipart = require('./multipart.js');
  return multipart;
}

class Calls {
  /**
   * @param native the NativeServer
   * @param streams the StreamTable (lib/streams.js)
   * @param answers the AnswerWriter (lib/wire.js)
   * @param codec the BodyCodec (lib/codec.js)
   * @param extras what normalizeOptions keeps on the JS side
   */
  constructor(native, streams, answers, codec, extras) {
    this._native = native;
    this._streams = streams;
    this._answers = answers;
    this._codec = codec;
    this._logger = extras.logger;
    this._resolveError = extras.resolveError;
    this._mapError = extras.mapError;
    this._multipartLimits = extras.multipartLimits;
    this._abortReason = extras.abortReason || defaultAbortReason;
    this._controllers = new Map(); // ticket -> AbortController of a handler that asked for ctx.signal
    this._reason = () => this.reason();
  }

  /** Runs a call whose body is JSON text still to parse (`jsonText`: with `JSON.parse`, see lib/codec.js). */
  run(kind, ticket, entry, bodyKind, text, jsonText) {
    if (!entry || !entry.fn || (bodyKind !== BODY_JSON && kind === KIND_TASK)) {
      this.runParsed(kind, ticket, entry, bodyKind, undefined);
      return;
    }
    let value;
    try {
      value = jsonText ? JSON.parse(text) : this._codec.parse(text);
    } catch {
      this._answers.answer(ticket, 400, this._codec.invalidJson);
      return;
    }
    this.runParsed(kind, ticket, entry, bodyKind, value);
  }

  /** Runs a call whose body is parsed (`value`; `undefined` when empty). */
  runParsed(kind, ticket, entry, bodyKind, value) {
    if (!entry || !entry.fn) {
      // Unregistered between the native lookup and now.
      const error = notFoundMember(kind, entry ? entry.id : '');
      this._answers.answer(ticket, 404, this._codec.failure(error));
      return;
    }
    if (kind === KIND_TASK && bodyKind !== BODY_JSON) {
      const ctx = new RequestContext(this, ticket, true);
      if (bodyKind === BODY_MULTIPART) this._runMultipart(entry, ticket, ctx);
      else this._invoke(kind, entry, ticket, ctx, undefined, false);
      return;
    }
    const ctx = new RequestContext(this, ticket, false);
    let returnPayload = false;
    let input;
    if (kind === KIND_TASK) {
      if (bodyKind !== BODY_JSON || !value || typeof value !== 'object') input = value;
      else input = hasOwn(value, 'input') ? value.input : value;
    } else {
      returnPayload = Boolean(value != null && value.returnPayload);
      input = value == null ? undefined : value.payload;
      ctx.returnPayload = returnPayload;
    }
    this._invoke(kind, entry, ticket, ctx, input, returnPayload);
  }

  /** Answers a joined result on its own, as it would have been alone (see AnswerWriter). */
  answerAlone(ticket, kind, id, ctx, value) {
    let body;
    try {
      body = this._codec.ok(value);
    } catch (err) {
      this._failed(kind, id, ticket, ctx, err);
      return;
    }
    this._answers.answer(ticket, 200, body);
  }

  /** The client went away: abort the handler's signal, fail its body stream, stop its streamed answer. */
  clientGone(ticket) {
    const controller = this._controllers.get(ticket);
    if (controller) {
      this._controllers.delete(ticket);
      controller.abort(this.reason());
    }
    this._streams.bodyFailed(ticket, this._reason);
    this._streams.abortAnswer(ticket);
  }

  /** The call is answered: let go of what it held. */
  done(ticket, ctx) {
    if (watchesSignal(ctx)) this._controllers.delete(ticket);
    releaseRequest(ctx);
  }

  /** Why a request was aborted: the client went away. */
  reason() {
    try {
      return this._abortReason();
    } catch {
      return defaultAbortReason();
    }
  }

  // What a RequestContext asks for.

  get streams() {
    return this._streams;
  }

  requestInfo(ticket) {
    return this._native.requestInfo(ticket);
  }

  parse(text) {
    return this._codec.parse(text);
  }

  /** A signal aborted when the client of `ticket` goes away (at once when it is gone already). */
  signalFor(ticket) {
    const controller = new AbortController();
    if (this._native.isPending(ticket)) {
      this._controllers.set(ticket, controller);
    } else {
      controller.abort(this.reason());
    }
    return controller.signal;
  }

  _invoke(kind, entry, ticket, ctx, input, returnPayload) {
    let out;
    try {
      out = entry.fn(input, ctx);
    } catch (err) {
      this._failed(kind, entry.id, ticket, ctx, err);
      return;
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      out.then(
        (result) => this._succeeded(kind, entry.id, ticket, ctx, result, input, returnPayload),
        (err) => this._failed(kind, entry.id, ticket, ctx, err),
      );
    } else {
      this._succeeded(kind, entry.id, ticket, ctx, out, input, returnPayload);
    }
  }

  async _runMultipart(entry, ticket, ctx) {
    let parsed;
    try {
      parsed = await multipartParser().parseMultipart(ctx.req, ctx.headers, {
        serializer: { parse: (text) => this._codec.parse(text) },
        limits: this._multipartLimits,
        signal: ctx.signal,
      });
    } catch (err) {
      this._failed(KIND_TASK, entry.id, ticket, ctx, err);
      return;
    }
    if (!parsed.ok) {
      this._answerResponse(ticket, ctx, parsed.response);
      return;
    }
    let result;
    let error;
    let failed = false;
    try {
      result = await entry.fn(parsed.value, ctx);
    } catch (err) {
      failed = true;
      error = err;
    }
    const finalized = await parsed.finalize;
    if (!finalized.ok) {
      if (!answerStarted(ctx)) this._answerResponse(ticket, ctx, finalized.response);
      else this.done(ticket, ctx);
      return;
    }
    if (failed) this._failed(KIND_TASK, entry.id, ticket, ctx, error);
    else this._succeeded(KIND_TASK, entry.id, ticket, ctx, result, parsed.value, false);
  }

  /** A `{ status, body }` error answer (multipart's), cleaned as the reference cleans it. */
  _answerResponse(ticket, ctx, response) {
    this.done(ticket, ctx);
    const status = responseStatus(response);
    this._answers.answer(ticket, status, this._codec.failure(responseErrorMember(response, status)));
  }

  _succeeded(kind, id, ticket, ctx, result, input, returnPayload) {
    if (answeredByHandler(ctx)) return;
    if (kind === KIND_TASK && (isReadable(result) || isStreamingResponse(result))) {
      this._streams.pipeAnswer(ticket, result, () => this.done(ticket, ctx));
      return;
    }
    this.done(ticket, ctx);
    // Results written as JSON go together at the end of the round; not while
    // a batch of large calls runs call by call (their results go out one by
    // one, so they need not all be alive at once).
    let body;
    try {
      if (!this._answers.holding && (kind === KIND_TASK || returnPayload)) {
        const value = kind === KIND_TASK || result !== undefined ? result : input;
        // (Checking may read the result: a throwing getter fails the call.)
        if (this._codec.joins(value)) {
          this._answers.join(ticket, kind, id, ctx, value);
          return;
        }
      }
      if (kind === KIND_TASK) body = this._codec.ok(result);
      else if (returnPayload) body = this._codec.ok(result === undefined ? input : result);
      else body = this._codec.okEmpty;
    } catch (err) {
      this._failed(kind, id, ticket, ctx, err);
      return;
    }
    this._answers.answer(ticket, 200, body);
  }

  _failed(kind, id, ticket, ctx, err) {
    this.done(ticket, ctx);
    const where = kind === KIND_TASK ? 'task' : 'event';
    if (typeof this._mapError === 'function') {
      try {
        err = this._mapError(err, { kind: where, id, requestId: ctx.requestId });
      } catch (mapped) {
        err = mapped;
      }
    }
    if (answerStarted(ctx)) {
      // Mid-stream failure: end the answer cleanly, as the reference does.
      logError(this._logger, where, id, err);
      if (!ctx.res.writableEnded) ctx.res.end();
      return;
    }
    if (isCancellation(err)) {
      this._answers.answer(ticket, 499, this._codec.aborted);
      return;
    }
    if (err instanceof ProtocolError) {
      const error = protocolErrorMember(err);
      const status = protocolErrorStatus(err);
      try {
        this._answers.answer(ticket, status, this._codec.stringify({ ok: false, error }));
        return;
      } catch (stringifyError) {
        err = stringifyError;
      }
    }
    logError(this._logger, where, id, err);
    const typed = resolveTypedError(err, this._resolveError);
    if (typed) {
      const error = typedErrorMember(err, typed);
      try {
        this._answers.answer(ticket, error.httpCode ?? 500, this._codec.stringify({ ok: false, error }));
        return;
      } catch (stringifyError) {
        logError(this._logger, where, id, stringifyError);
      }
    }
    this._answers.answer(ticket, 500, this._codec.internal);
  }
}

module.exports = { Calls };
