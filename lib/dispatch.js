'use strict';

// The batch loop: the native side queues jobs and wakes JS once; JS reads
// what queued up as one batch (lib/wire.js) and hands each record to what it
// is about: a call to run (lib/calls.js), a body chunk or a resume to its
// stream (lib/streams.js), a CORS origin, serializer or auth question to
// answer here.

const {
  KIND_TASK,
  KIND_EVENT,
  KIND_ABORT,
  KIND_ORIGIN,
  KIND_AUTH,
  KIND_SERIALIZE,
  KIND_BODY_CHUNK,
  KIND_BODY_END,
  KIND_BODY_ERROR,
  KIND_RESUME,
  KIND_GONE,
  KIND_AUTH_FAILED,
  FLAG_ORIGIN_SENT,
} = require('../native.js');
const { BatchReader } = require('./wire.js');
const { RequestContext } = require('./context.js');
const { logError, logAuthFailure } = require('./logging.js');

// A call whose body is at least this many bytes is followed by a microtask
// turn before the next call of its batch (see _dispatch).
const LARGE_CALL = 4096;

class Dispatcher {
  /**
   * @param native the NativeServer
   * @param tasks the task HandlerSlots (lib/handlers.js)
   * @param events the event HandlerSlots
   * @param calls the Calls (lib/calls.js)
   * @param streams the StreamTable (lib/streams.js)
   * @param answers the AnswerWriter (lib/wire.js)
   * @param codec the BodyCodec (lib/codec.js)
   * @param extras what normalizeOptions keeps on the JS side
   */
  constructor(native, tasks, events, calls, streams, answers, codec, extras) {
    this._native = native;
    this._tasks = tasks;
    this._events = events;
    this._calls = calls;
    this._streams = streams;
    this._answers = answers;
    this._codec = codec;
    this._logger = extras.logger;
    this._originSpec = extras.originSpec;
    this._validate = extras.validate;
    this._reader = new BatchReader();
    // After each batch, one poll in the check phase fetches what queued up
    // meanwhile; only when that finds nothing does the next job wake us.
    this._pollScheduled = false;
    this._poll = () => {
      this._pollScheduled = false;
      this.fetch();
    };
    this._resume = () => this._dispatch();
  }

  /** Fetches what the native side queued and dispatches it (the native side's `onJobs`). */
  fetch() {
    // A batch still being dispatched may live in the reused buffer; the
    // poll already scheduled for after it fetches what came meanwhile.
    if (this._answers.holding) return;
    if (!this._reader.poll(this._native)) return;
    if (!this._pollScheduled) {
      this._pollScheduled = true;
      setImmediate(this._poll);
    }
    this._dispatch();
  }

  /** Dispatches the batch's records from the reader's position on. */
  _dispatch() {
    const resumed = this._answers.release();
    const batch = this._reader;
    while (batch.next()) {
      const kind = batch.kind;
      const ticket = batch.ticket;
      try {
        if (kind === KIND_TASK || kind === KIND_EVENT) {
          const entry = kind === KIND_TASK ? this._tasks.at(batch.slot) : this._events.at(batch.slot);
          if (batch.joined) {
            this._calls.runParsed(kind, ticket, entry, batch.bodyKind, batch.joinedValue());
            continue;
          }
          const length = batch.length;
          if (length === 0) this._calls.runParsed(kind, ticket, entry, batch.bodyKind, undefined);
          else this._calls.run(kind, ticket, entry, batch.bodyKind, batch.text(), batch.jsonText);
          if (length >= LARGE_CALL && batch.hasNext()) {
            // Let this call's promise jobs (and so its answer) run before
            // the next call is parsed: a batch of large inputs then does not
            // keep every parsed input alive at once.
            this._answers.hold();
            queueMicrotask(this._resume);
            return;
          }
        } else if (kind === KIND_BODY_CHUNK) {
          this._streams.bodyChunk(ticket, batch.bytes());
        } else if (kind === KIND_BODY_END) {
          this._streams.bodyEnd(ticket);
        } else if (kind === KIND_BODY_ERROR) {
          // The body broke off: the client went away mid-upload.
          this._calls.clientGone(ticket);
        } else if (kind === KIND_RESUME) {
          this._streams.resume(ticket);
        } else if (kind === KIND_GONE) {
          // The native side has dropped the streamed answer: its source is
          // stopped once the handler's signal and body have been told.
          const out = this._streams.detachAnswer(ticket);
          this._calls.clientGone(ticket);
          if (out) out.gone();
        } else if (kind === KIND_ABORT) {
          this._calls.clientGone(ticket);
        } else if (kind === KIND_AUTH_FAILED) {
          logAuthFailure(this._logger, JSON.parse(batch.text()));
        } else if (kind === KIND_ORIGIN) {
          const origin = batch.flags === FLAG_ORIGIN_SENT ? batch.latin1() : undefined;
          this._native.completeText(ticket, this._resolveOrigin(origin));
        } else if (kind === KIND_SERIALIZE) {
          this._native.completeText(ticket, this._codec.reserialize(batch.text()));
        } else if (kind === KIND_AUTH) {
          this._runValidator(ticket);
        }
      } catch (err) {
        logError(this._logger, 'dispatch', undefined, err);
        if (kind === KIND_TASK || kind === KIND_EVENT) this._answers.answer(ticket, 500, this._codec.internal);
      }
    }
    if (resumed) this._answers.flushPending();
  }

  /** The `Access-Control-Allow-Origin` a RegExp or function `cors.origin` gives, or null. */
  _resolveOrigin(origin) {
    const spec = this._originSpec;
    try {
      if (spec instanceof RegExp) {
        return origin && spec.test(origin) ? origin : null;
      }
      if (typeof spec === 'function') {
        const out = spec(origin);
        return out ? String(out) : null;
      }
    } catch (err) {
      logError(this._logger, 'cors origin', undefined, err);
    }
    return null;
  }

  /** Asks `auth.validate` whether to let a request in that no token matched. */
  _runValidator(ticket) {
    const ctx = new RequestContext(this._calls, ticket, false);
    const info = { headers: ctx.headers, method: ctx.method, url: ctx.url, path: ctx.path };
    let out;
    try {
      out = this._validate(info);
    } catch {
      this._native.completeAuth(ticket, false);
      return;
    }
    Promise.resolve(out).then(
      (ok) => this._native.completeAuth(ticket, ok === true || Boolean(ok && ok.ok)),
      () => this._native.completeAuth(ticket, false),
    );
  }
}

module.exports = { Dispatcher };
