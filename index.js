'use strict';

// The JavaScript half of the native tunnel server: TunnelServer, its public
// surface and lifecycle. The HTTP side (routing, auth, CORS, limits,
// envelopes for protocol errors) runs in Rust; see src/. What runs on the JS
// thread is in lib/:
//   options.js   option checking: options -> the native config and the JS extras
//   dispatch.js  the batch loop: each record the native side queues, handed on
//   wire.js      the batch reader and the answer writer, over reused buffers
//   calls.js     running a task or event call and answering it
//   outcome.js   a result or error -> status and body (shared with runner.js)
//   codec.js     the serializer, as bodies are read and answers written
//   context.js   `ctx`, the handler's second argument
//   handlers.js  registered handlers by slot
//   streams.js, multipart.js  streamed bodies and answers, uploads
//   logging.js   what is logged, and how a failing logger is survived
//   observe.js   the metrics and onAccess options, stats(), access deliveries
//   workers.js   serveInWorkers: worker threads sharing one listener (share)

const { NativeServer } = require('./native.js');
const { normalizeOptions, allowListInput, checkHandler } = require('./lib/options.js');
const { BodyCodec } = require('./lib/codec.js');
const { AnswerWriter } = require('./lib/wire.js');
const { StreamTable } = require('./lib/streams.js');
const { Calls } = require('./lib/calls.js');
const { Dispatcher } = require('./lib/dispatch.js');
const { HandlerSlots } = require('./lib/handlers.js');
const { ProtocolError } = require('./lib/outcome.js');
const { accessDelivery, shapeStats } = require('./lib/observe.js');
const { serveInWorkers } = require('./lib/workers.js');

class TunnelServer {
  /**
   * @param {import('./index').TunnelServerOptions} [options]
   */
  constructor(options) {
    const { config, extras } = normalizeOptions(options);
    this._closeGraceMs = extras.closeGraceMs;
    this._tasks = new HandlerSlots();
    this._events = new HandlerSlots();
    this._keepAlive = null;
    this._address = null;
    this._closing = null;
    const codec = new BodyCodec(extras.serializer);
    // The native side calls back once listening, when jobs are queued.
    const native = new NativeServer(config, () => dispatcher.fetch());
    if (extras.onAccess) native.setAccessSink(accessDelivery(extras.onAccess, extras.logger));
    this._metricsPath = extras.metricsPath;
    const streams = new StreamTable(native);
    const answers = new AnswerWriter(native, (ticket, kind, id, ctx, value) =>
      calls.answerAlone(ticket, kind, id, ctx, value),
    );
    const calls = new Calls(native, streams, answers, codec, extras);
    const dispatcher = new Dispatcher(native, this._tasks, this._events, calls, streams, answers, codec, extras);
    this._native = native;
    this._dispatcher = dispatcher;
    this._scheme = config.tls ? 'https' : 'http';
  }

  registerTask(id, handler) {
    checkHandler('registerTask', id, handler);
    this._native.registerTask(id, this._tasks.set(id, handler));
    return this;
  }

  registerEvent(id, handler) {
    checkHandler('registerEvent', id, handler);
    this._native.registerEvent(id, this._events.set(id, handler));
    return this;
  }

  unregisterTask(id) {
    if (!this._tasks.delete(id)) return false;
    this._native.unregisterTask(id);
    return true;
  }

  unregisterEvent(id) {
    if (!this._events.delete(id)) return false;
    this._native.unregisterEvent(id);
    return true;
  }

  getTaskIds() {
    return this._native.taskIds();
  }

  getEventIds() {
    return this._native.eventIds();
  }

  /**
   * Restrict calls to an allow-list, as Runner's tunnel resources do:
   * `{ enabled, allowOpen, tasks, events }`, checked before existence (403
   * `Exposure not enabled` / `Task {id} not exposed`) and listed by
   * discovery. `null` serves every registered id again.
   */
  setAllowList(list) {
    this._native.setAllowList(allowListInput(list));
  }

  /** `{ host, port, url }` while listening, otherwise `null`. */
  address() {
    return this._address ? { ...this._address } : null;
  }

  /** Binds and serves. Resolves with `{ host, port, url }`. */
  async listen() {
    if (this._address) throw new Error('TunnelServer is already listening');
    // Throws with `code` set natively (EADDRINUSE, ERR_TLS_CONFIG, ...).
    const bound = this._native.listen();
    const host = bound.host;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    this._address = {
      host,
      port: bound.port,
      url: `${this._scheme}://${urlHost}:${bound.port}`,
      // What node's server.address() gives, for code written against node:http.
      address: host,
      family: host.includes(':') ? 'IPv6' : 'IPv4',
    };
    if (this._metricsPath !== undefined) {
      // The metrics port speaks plain HTTP; on the server's port, what the server speaks.
      const origin = bound.metricsPort === undefined ? this._address.url : `http://${urlHost}:${bound.metricsPort}`;
      this._address.metricsUrl = `${origin}${this._metricsPath}`;
    }
    // The native server does not hold the event loop open by itself.
    this._keepAlive = setInterval(() => {}, 1 << 30);
    return { ...this._address };
  }

  /** The server's figures (the same as its Prometheus metrics), counted since it was made (a sharer's: its listener's). */
  stats() {
    return shapeStats(this._native.statsJson());
  }

  /** The server's figures in Prometheus' text format, for serving them from elsewhere. */
  metricsText() {
    return this._native.metricsText();
  }

  /** Stops accepting, lets in-flight requests finish, frees the port. */
  async close() {
    if (this._closing) return this._closing;
    if (!this._address) return;
    this._closing = (async () => {
      try {
        await this._native.close(this._closeGraceMs);
        // The aborts of calls cut off by the grace are queued by now: the
        // handlers' signals fire before close() resolves.
        this._dispatcher.fetch();
      } finally {
        clearInterval(this._keepAlive);
        this._keepAlive = null;
        this._address = null;
        this._closing = null;
      }
    })();
    return this._closing;
  }
}

module.exports = { TunnelServer, ProtocolError, serveInWorkers };
