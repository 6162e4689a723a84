'use strict'

// The JavaScript half of the native tunnel server: option checking, the
// handlers themselves, the serializer, and the per-request context. The
// HTTP side (routing, auth, CORS, limits, envelopes for protocol errors)
// runs in Rust; see src/.

const { NativeServer } = require('./native.js')
const { RequestBody, ResponseWriter, pipeOut, headerList, isReadable, isStreamingResponse } = require('./lib/streams.js')

let multipart = null
function multipartParser() {
  if (!multipart) multipart = require('./lib/multipart.js')
  return multipart
}

// Record kinds and body kinds of the batch buffer (src/bridge/batch.rs).
const KIND_TASK = 0
const KIND_EVENT = 1
const KIND_ABORT = 2
const KIND_ORIGIN = 3
const KIND_AUTH = 4
const KIND_SERIALIZE = 5
const KIND_BODY_CHUNK = 6
const KIND_BODY_END = 7
const KIND_BODY_ERROR = 8
const KIND_RESUME = 9
const KIND_GONE = 10
const KIND_AUTH_FAILED = 11
const KIND_VALUES = 12
// A call whose body is the next element of its batch's values record.
const FLAG_JOINED = 0x80
const BODY_JSON = 0
const BODY_MULTIPART = 2
const RECORD_HEADER = 16
// A call whose body is at least this many bytes is followed by a microtask
// turn before the next call of its batch (see _dispatch).
const LARGE_CALL = 4096

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k)
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

function fail(field, expected) {
  throw new TypeError(`TunnelServer: option "${field}" must be ${expected}`)
}

function checkStringList(value, field) {
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) {
    fail(field, 'an array of strings')
  }
  return value.slice()
}

function checkOrigin(origin, field) {
  if (origin === undefined || origin === null) return { kind: 'unset' }
  if (typeof origin === 'string') return { kind: 'exact', value: origin }
  if (Array.isArray(origin)) return { kind: 'list', value: checkStringList(origin, field) }
  if (origin instanceof RegExp || typeof origin === 'function') return { kind: 'dynamic' }
  return fail(field, 'a string, an array of strings, a RegExp or a function')
}

/** Validates user options into the JSON the native side reads. */
function normalizeOptions(options) {
  if (options === undefined) options = {}
  if (!isPlainObject(options)) fail('options', 'an object')
  const config = { port: 0, disableDiscovery: false, workerThreads: 0 }
  const extras = {
    serializer: null,
    logger: console,
    originSpec: null,
    validate: null,
    closeGraceMs: 10000,
    resolveError: null,
    multipartLimits: undefined,
    abortReason: null,
  }

  if (options.port !== undefined) {
    const p = options.port
    if (!Number.isInteger(p) || p < 0 || p > 65535) fail('port', 'an integer from 0 to 65535')
    config.port = p
  }
  if (options.host !== undefined) {
    if (typeof options.host !== 'string' || options.host === '') fail('host', 'a non-empty string')
    config.host = options.host
  }
  if (options.basePath !== undefined) {
    if (typeof options.basePath !== 'string') fail('basePath', 'a string')
    config.basePath = options.basePath
  }
  if (options.auth !== undefined) {
    const a = options.auth
    if (!isPlainObject(a)) fail('auth', 'an object')
    const auth = { allowAnonymous: false, hasValidators: false }
    if (a.token !== undefined && a.token !== null) {
      if (typeof a.token === 'string') {
        // An empty string counts as "no token", as in nodeExposure.
        if (a.token !== '') auth.tokens = [a.token]
      } else if (Array.isArray(a.token)) {
        auth.tokens = checkStringList(a.token, 'auth.token')
      } else {
        fail('auth.token', 'a string or an array of strings')
      }
    }
    if (a.header !== undefined) {
      if (typeof a.header !== 'string' || a.header === '') fail('auth.header', 'a non-empty string')
      auth.header = a.header
    }
    if (a.allowAnonymous !== undefined) {
      if (typeof a.allowAnonymous !== 'boolean') fail('auth.allowAnonymous', 'a boolean')
      auth.allowAnonymous = a.allowAnonymous
    }
    if (a.validate !== undefined) {
      if (typeof a.validate !== 'function') fail('auth.validate', 'a function')
      extras.validate = a.validate
      auth.hasValidators = true
    }
    config.auth = auth
  }
  let cors = options.cors
  if (cors !== undefined) {
    if (!isPlainObject(cors)) fail('cors', 'an object')
  }
  if (options.corsOrigins !== undefined) {
    checkStringList(options.corsOrigins, 'corsOrigins')
    if (cors && cors.origin !== undefined) fail('corsOrigins', 'left out when cors.origin is set')
    cors = { ...(cors || {}), origin: options.corsOrigins }
  }
  if (cors !== undefined) {
    const out = { origin: checkOrigin(cors.origin, 'cors.origin'), credentials: false }
    if (out.origin.kind === 'dynamic') extras.originSpec = cors.origin
    for (const key of ['methods', 'allowedHeaders', 'exposedHeaders']) {
      if (cors[key] !== undefined) out[key] = checkStringList(cors[key], `cors.${key}`)
    }
    if (cors.credentials !== undefined) {
      if (typeof cors.credentials !== 'boolean') fail('cors.credentials', 'a boolean')
      out.credentials = cors.credentials
    }
    if (cors.maxAge !== undefined) {
      if (typeof cors.maxAge !== 'number' || !Number.isFinite(cors.maxAge)) fail('cors.maxAge', 'a finite number')
      out.maxAge = cors.maxAge
    }
    if (cors.varyOrigin !== undefined) {
      if (typeof cors.varyOrigin !== 'boolean') fail('cors.varyOrigin', 'a boolean')
      out.varyOrigin = cors.varyOrigin
    }
    config.cors = out
  }
  if (options.limits !== undefined) {
    if (!isPlainObject(options.limits)) fail('limits', 'an object')
    const mp = options.limits.multipart
    if (mp !== undefined) {
      if (!isPlainObject(mp)) fail('limits.multipart', 'an object')
      for (const [key, value] of Object.entries(mp)) {
        if (!Number.isSafeInteger(value) || value < 0) fail(`limits.multipart.${key}`, 'a non-negative integer')
      }
      extras.multipartLimits = { ...mp }
    }
    const json = options.limits.json
    if (json !== undefined) {
      if (!isPlainObject(json)) fail('limits.json', 'an object')
      if (json.maxSize !== undefined) {
        if (!Number.isSafeInteger(json.maxSize) || json.maxSize < 0) fail('limits.json.maxSize', 'a non-negative integer')
        config.maxJsonBytes = json.maxSize
      }
    }
  }
  if (options.disableDiscovery !== undefined) {
    if (typeof options.disableDiscovery !== 'boolean') fail('disableDiscovery', 'a boolean')
    config.disableDiscovery = options.disableDiscovery
  }
  if (options.serializer !== undefined && options.serializer !== null) {
    const s = options.serializer
    if (typeof s !== 'object' || typeof s.parse !== 'function' || typeof s.stringify !== 'function') {
      fail('serializer', 'an object with parse(text) and stringify(value) functions')
    }
    extras.serializer = s
    config.customSerializer = !writesPlainJson(s)
  }
  if (options.logger !== undefined && options.logger !== null) {
    if (typeof options.logger !== 'object' || typeof options.logger.error !== 'function') {
      fail('logger', 'an object with an error(...) function')
    }
    extras.logger = options.logger
  }
  if (options.abortReason !== undefined && options.abortReason !== null) {
    if (typeof options.abortReason !== 'function') fail('abortReason', 'a function')
    extras.abortReason = options.abortReason
  }
  if (options.resolveError !== undefined && options.resolveError !== null) {
    if (typeof options.resolveError !== 'function') fail('resolveError', 'a function')
    extras.resolveError = options.resolveError
  }
  if (options.workerThreads !== undefined) {
    const n = options.workerThreads
    if (!Number.isInteger(n) || n < 1 || n > 64) fail('workerThreads', 'an integer from 1 to 64')
    config.workerThreads = n
  }
  for (const option of ['requestTimeout', 'keepAliveTimeout']) {
    const n = options[option]
    if (n === undefined) continue
    if (!Number.isInteger(n) || n < 0) fail(option, 'a non-negative integer (ms; 0 = no limit)')
    config[`${option}Ms`] = n
  }
  if (options.closeGraceMs !== undefined) {
    const n = options.closeGraceMs
    if (!Number.isInteger(n) || n < 0) fail('closeGraceMs', 'a non-negative integer')
    extras.closeGraceMs = n
  }
  // Without a serializer, small JSON bodies may arrive joined per batch.
  config.plainJsonCalls = extras.serializer === null
  return { config, extras }
}

/**
 * Whether a serializer writes the server's own envelopes exactly as
 * `JSON.stringify` does (true of Runner's Serializer); if not, those
 * envelopes are passed through it.
 */
function writesPlainJson(serializer) {
  const samples = [
    { ok: false, error: { message: 'Task a.b "c" not found', code: 'NOT_FOUND' } },
    { ok: true, result: { allowList: { enabled: true, tasks: ['a', 'b/c'], events: [] } } },
    { ok: true },
  ]
  try {
    return samples.every((v) => serializer.stringify(v) === JSON.stringify(v))
  } catch {
    return false
  }
}

// Envelopes the JS side writes (key order as nodeExposure's).
const ABORTED_BODY = '{"ok":false,"error":{"message":"Client Closed Request","code":"REQUEST_ABORTED"}}'
const INTERNAL_BODY = '{"ok":false,"error":{"message":"Internal Error","code":"INTERNAL_ERROR"}}'
const INVALID_JSON_BODY = '{"ok":false,"error":{"message":"Invalid JSON body","code":"INVALID_JSON"}}'
const OK_EMPTY = '{"ok":true}'

/**
 * Whether a result is written inside an array exactly as on its own: not
 * `undefined` (no body), a function or a symbol (nothing), nor an object
 * with `toJSON` (which is told its key).
 */
function joinable(value) {
  const type = typeof value
  if (type === 'object') return value === null || typeof value.toJSON !== 'function'
  return type === 'number' || type === 'string' || type === 'boolean'
}

function abortReason() {
  const err = new Error('Client Closed Request')
  err.name = 'AbortError'
  return err
}

function isCancellation(err) {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'runner.errors.cancellation')
}

function isValidHttpCode(v) {
  return typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599
}

/** A typed application error: what Runner's `r.error()` helpers throw. */
function isTypedError(err) {
  return (
    err instanceof Error &&
    typeof err.name === 'string' &&
    hasOwn(err, 'name') &&
    hasOwn(err, 'id') &&
    err.id === err.name &&
    hasOwn(err, 'data')
  )
}

/**
 * Thrown by a handler to answer with a protocol error of its choosing:
 * `{"ok":false,"error":{"message":M,"code":C,...extra}}` with `status`.
 */
class ProtocolError extends Error {
  constructor(status, code, message, extra) {
    super(message)
    this.name = 'ProtocolError'
    this.status = status
    this.code = code
    this.extra = extra
  }
}

/** The default typed-error rule: what Runner's `r.error()` helpers throw. */
function defaultResolveError(err) {
  if (!isTypedError(err)) return undefined
  return { id: err.name, data: err.data, httpCode: err.httpCode }
}

/** The second argument every handler gets. Fields are read lazily. */
class RequestContext {
  constructor(server, ticket) {
    this._server = server
    this._ticket = ticket
    this._info = undefined
    this._signal = undefined
    this._context = undefined
    /** Events: whether the caller asked for the final payload back. */
    this.returnPayload = false
    this._req = undefined
    this._res = undefined
  }

  /**
   * The request body as a Node `Readable` (with `headers`, `method`, `url`).
   * For `application/octet-stream` tasks it streams the raw body; for JSON
   * calls it is already consumed and ends at once.
   */
  get req() {
    if (this._req === undefined) this._req = new RequestBody(this._server, this._ticket, this, false)
    return this._req
  }

  /** Write the answer yourself (`writeHead`, `setHeader`, `write`, `end`). */
  get res() {
    if (this._res === undefined) {
      this._res = new ResponseWriter(this._server, this._ticket, () => this._server._done(this._ticket, this))
    }
    return this._res
  }

  _load() {
    if (this._info === undefined) {
      const text = this._server._native.requestInfo(this._ticket)
      this._info = text ? JSON.parse(text) : { method: undefined, url: undefined, path: undefined, requestId: undefined, headers: {} }
    }
    return this._info
  }

  /** `x-runner-request-id` of this request (the client's, or a fresh UUID). */
  get requestId() { return this._load().requestId }
  /** Request headers as Node presents them (lower-case names). */
  get headers() { return this._load().headers }
  get method() { return this._load().method }
  /** The request pathname. */
  get path() { return this._load().path }
  /** The request target as sent, query included. */
  get url() { return this._load().url }

  /** The `x-runner-context` map, parsed by the server's serializer. */
  get context() {
    if (this._context === undefined) {
      const raw = this.headers['x-runner-context']
      let value = null
      if (typeof raw === 'string' && raw !== '') {
        try { value = this._server._parse(raw) } catch { value = null }
      }
      this._context = value
    }
    return this._context === null ? undefined : this._context
  }

  /** Aborted when the client goes away before the answer. */
  get signal() {
    if (this._signal === undefined) {
      const controller = new AbortController()
      if (this._server._native.isPending(this._ticket)) {
        this._server._controllers.set(this._ticket, controller)
      } else {
        controller.abort(this._server._reason())
      }
      this._signal = controller.signal
    }
    return this._signal
  }
}

class TunnelServer {
  /**
   * @param {import('./index').TunnelServerOptions} [options]
   */
  constructor(options) {
    const { config, extras } = normalizeOptions(options)
    this._config = config
    this._serializer = extras.serializer
    this._logger = extras.logger
    this._originSpec = extras.originSpec
    this._validate = extras.validate
    this._closeGraceMs = extras.closeGraceMs
    this._resolveError = extras.resolveError
    this._multipartLimits = extras.multipartLimits
    this._abortReason = extras.abortReason || abortReason
    this._inStreams = new Map() // ticket -> RequestBody being streamed in
    this._outStreams = new Map() // ticket -> { resume, gone } of a streamed answer
    this._fixed = {
      ok: this._envelope({ ok: true }, OK_EMPTY),
      aborted: this._envelope(JSON.parse(ABORTED_BODY), ABORTED_BODY),
      internal: this._envelope(JSON.parse(INTERNAL_BODY), INTERNAL_BODY),
      invalidJson: this._envelope(JSON.parse(INVALID_JSON_BODY), INVALID_JSON_BODY),
    }
    this._tasks = [] // handler index -> { id, fn }; fn is null once unregistered
    this._events = []
    this._taskIndex = new Map()
    this._eventIndex = new Map()
    this._controllers = new Map()
    // Answers are encoded into one reused buffer and handed to the native
    // side in one call per microtask round (see _answer).
    this._outBuffer = Buffer.allocUnsafe(256 * 1024)
    this._outOff = 0
    this._own = null
    // Results of this round to write with one JSON.stringify, and their
    // calls (ticket, kind, id, ctx).
    this._joined = []
    this._joinedCalls = []
    this._flushScheduled = false
    this._dispatching = false
    this._flush = () => this._flushAnswers()
    this._keepAlive = null
    this._address = null
    this._closing = null
    // After each batch, one poll in the check phase fetches what queued up
    // meanwhile; only when that finds nothing does the next job wake us.
    // Jobs arrive in a reused buffer (or, when they hold body chunks or do
    // not fit, in one of their own).
    this._pollScheduled = false
    this._inBuffer = Buffer.allocUnsafe(64 * 1024)
    this._fetch = () => {
      // A batch still being dispatched may live in the reused buffer; the
      // poll already scheduled for after it fetches what came meanwhile.
      if (this._dispatching) return
      const n = this._native.pollInto(this._inBuffer)
      if (n === -1) return
      this._onBatch(n === -2 ? this._native.takeSpill() : this._inBuffer.subarray(0, n))
    }
    this._poll = () => {
      this._pollScheduled = false
      this._fetch()
    }
    this._native = new NativeServer(JSON.stringify(config), this._fetch)
  }

  registerTask(id, handler) {
    this._register('task', id, handler)
    return this
  }

  registerEvent(id, handler) {
    this._register('event', id, handler)
    return this
  }

  unregisterTask(id) {
    return this._unregister('task', id)
  }

  unregisterEvent(id) {
    return this._unregister('event', id)
  }

  getTaskIds() {
    return this._native.taskIds()
  }

  getEventIds() {
    return this._native.eventIds()
  }

  /**
   * Restrict calls to an allow-list, as Runner's tunnel resources do:
   * `{ enabled, allowOpen, tasks, events }`, checked before existence (403
   * `Exposure not enabled` / `Task {id} not exposed`) and listed by
   * discovery. `null` serves every registered id again.
   */
  setAllowList(list) {
    if (list === null || list === undefined) {
      this._native.setAllowList(null)
      return
    }
    if (!isPlainObject(list)) throw new TypeError('TunnelServer.setAllowList: "list" must be an object or null')
    const tasks = list.tasks === undefined ? [] : checkStringList(list.tasks, 'allowList.tasks')
    const events = list.events === undefined ? [] : checkStringList(list.events, 'allowList.events')
    this._native.setAllowList(
      JSON.stringify({ enabled: Boolean(list.enabled), allowOpen: Boolean(list.allowOpen), tasks, events }),
    )
  }

  /** `{ host, port, url }` while listening, otherwise `null`. */
  address() {
    return this._address ? { ...this._address } : null
  }

  /** Binds and serves. Resolves with `{ host, port, url }`. */
  async listen() {
    if (this._address) throw new Error('TunnelServer is already listening')
    let bound
    try {
      bound = this._native.listen()
    } catch (e) {
      const message = String(e && e.message ? e.message : e)
      const err = new Error(message)
      const code = /^([A-Z_]+):/.exec(message)
      if (code) err.code = code[1]
      throw err
    }
    const host = bound.host
    const urlHost = host.includes(':') ? `[${host}]` : host
    this._address = { host, port: bound.port, url: `http://${urlHost}:${bound.port}` }
    // The native server does not hold the event loop open by itself.
    this._keepAlive = setInterval(() => {}, 1 << 30)
    return { ...this._address }
  }

  /** Stops accepting, lets in-flight requests finish, frees the port. */
  async close() {
    if (this._closing) return this._closing
    if (!this._address) return
    this._closing = (async () => {
      try {
        await this._native.close(this._closeGraceMs)
      } finally {
        clearInterval(this._keepAlive)
        this._keepAlive = null
        this._address = null
        this._closing = null
      }
    })()
    return this._closing
  }

  _register(kind, id, handler) {
    const name = kind === 'task' ? 'registerTask' : 'registerEvent'
    if (typeof id !== 'string' || id === '') throw new TypeError(`TunnelServer.${name}: "id" must be a non-empty string`)
    if (typeof handler !== 'function') throw new TypeError(`TunnelServer.${name}: "handler" must be a function`)
    const list = kind === 'task' ? this._tasks : this._events
    const index = kind === 'task' ? this._taskIndex : this._eventIndex
    let slot = index.get(id)
    if (slot === undefined) {
      slot = list.length
      list.push({ id, fn: handler })
      index.set(id, slot)
    } else {
      list[slot] = { id, fn: handler }
    }
    if (kind === 'task') this._native.registerTask(id, slot)
    else this._native.registerEvent(id, slot)
  }

  _unregister(kind, id) {
    const list = kind === 'task' ? this._tasks : this._events
    const index = kind === 'task' ? this._taskIndex : this._eventIndex
    const slot = index.get(id)
    if (slot === undefined) return false
    index.delete(id)
    list[slot] = { id, fn: null }
    if (kind === 'task') this._native.unregisterTask(id)
    else this._native.unregisterEvent(id)
    return true
  }

  /** Why a request was aborted: the client went away. */
  _reason() {
    try {
      return this._abortReason()
    } catch {
      return abortReason()
    }
  }

  /**
   * Where a record of `head` bytes and then `text` (as UTF-8) is written:
   * its offset in the out-buffer, after handing over what the buffer holds
   * when the record does not fit behind it; -1 when the record is larger
   * than the buffer, and `this._own` is a buffer of its own for it.
   */
  _place(head, text) {
    const buf = this._outBuffer
    const off = this._outOff
    if (off + head + text.length * 3 <= buf.length) return off
    const bytes = Buffer.byteLength(text)
    if (off + head + bytes <= buf.length) return off
    if (off > 0) {
      this._native.completeMany(buf.subarray(0, off))
      this._outOff = 0
    }
    if (head + bytes <= buf.length) return 0
    this._own = Buffer.allocUnsafe(head + bytes)
    return -1
  }

  /** Hands over a record written by `_place`'s rules, or keeps it queued. */
  _placed(buf, end) {
    if (buf === this._outBuffer) {
      this._outOff = end
      this._scheduleFlush()
    } else {
      this._own = null
      this._native.completeMany(buf)
    }
  }

  /**
   * Queues an answer: encoded at once into the reused out-buffer, handed to
   * the native side when the buffer is full and at the end of the current
   * microtask round (one call for every answer of a batch).
   */
  _answer(ticket, status, body) {
    let off = this._place(12, body)
    const buf = off < 0 ? this._own : this._outBuffer
    if (off < 0) off = 0
    buf.writeUInt32LE(ticket, off)
    buf.writeUInt32LE(status, off + 4)
    const len = buf.write(body, off + 12, 'utf8')
    buf.writeUInt32LE(len, off + 8)
    this._placed(buf, off + 12 + len)
  }

  /**
   * Queues a successful call's result to be written with the others of
   * this microtask round: one `JSON.stringify` of them all, which the
   * native side splits into `{"ok":true,"result":...}` answers.
   */
  _joinResult(ticket, kind, id, ctx, value) {
    this._joined.push(value)
    this._joinedCalls.push(ticket, kind, id, ctx)
    this._scheduleFlush()
  }

  /** Hands the queued answers over at the end of this microtask round. */
  _scheduleFlush() {
    if (!this._flushScheduled) {
      this._flushScheduled = true
      queueMicrotask(this._flush)
    }
  }

  /** Writes the joined results as one record (ticket 0; see _joinResult). */
  _writeJoined() {
    const values = this._joined
    const calls = this._joinedCalls
    const n = values.length
    this._joined = []
    this._joinedCalls = []
    let text
    try {
      text = JSON.stringify(values)
    } catch {
      // One of them cannot be written: each goes on its own, as it would
      // have alone, so only that call fails.
      for (let i = 0; i < n; i++) {
        const ticket = calls[4 * i]
        let body
        try {
          body = this._okBody(values[i])
        } catch (err) {
          this._failed(calls[4 * i + 1], calls[4 * i + 2], ticket, calls[4 * i + 3], err)
          continue
        }
        this._answer(ticket, 200, body)
      }
      return
    }
    const head = 12 + 4 * n
    let off = this._place(head, text)
    const buf = off < 0 ? this._own : this._outBuffer
    if (off < 0) off = 0
    buf.writeUInt32LE(0, off)
    buf.writeUInt32LE(n, off + 4)
    for (let i = 0; i < n; i++) buf.writeUInt32LE(calls[4 * i], off + 12 + 4 * i)
    const len = buf.write(text, off + head, 'utf8')
    buf.writeUInt32LE(4 * n + len, off + 8)
    this._placed(buf, off + head + len)
  }

  _flushAnswers() {
    // A batch still being dispatched call by call (see _dispatch) flushes
    // when it is done.
    if (this._dispatching) {
      this._flushScheduled = false
      return
    }
    // (Still marked scheduled while the joined results are written, so
    // writing them does not schedule another flush.)
    if (this._joined.length > 0) this._writeJoined()
    this._flushScheduled = false
    const off = this._outOff
    if (off === 0) return
    this._outOff = 0
    this._native.completeMany(this._outBuffer.subarray(0, off))
  }

  _envelope(value, fallback) {
    if (!this._serializer) return fallback
    try {
      const text = this._serializer.stringify(value)
      return typeof text === 'string' ? text : fallback
    } catch {
      return fallback
    }
  }

  _reserialize(json) {
    try {
      const text = this._serializer.stringify(JSON.parse(json))
      return typeof text === 'string' ? text : json
    } catch {
      return json
    }
  }

  _parse(text) {
    return this._serializer ? this._serializer.parse(text) : JSON.parse(text)
  }

  _stringify(value) {
    return this._serializer ? this._serializer.stringify(value) : JSON.stringify(value)
  }

  _okBody(result) {
    if (this._serializer) return this._serializer.stringify({ ok: true, result })
    if (result === undefined) return OK_EMPTY
    const text = JSON.stringify(result)
    return text === undefined ? OK_EMPTY : '{"ok":true,"result":' + text + '}'
  }

  _onBatch(batch) {
    if (!this._pollScheduled) {
      this._pollScheduled = true
      setImmediate(this._poll)
    }
    this._dispatch(batch, 0, null, 0)
  }

  /**
   * The small JSON bodies of a batch, parsed with one `JSON.parse`: the
   * native side joined them, in call order, into the batch's last record.
   */
  _joinedValues(batch, from) {
    const end = batch.length
    let off = from
    while (off + RECORD_HEADER <= end) {
      const len = batch.readUInt32LE(off + 12)
      if (batch[off] === KIND_VALUES) {
        const start = off + RECORD_HEADER
        const text = batch.toString(batch[off + 1] === 1 ? 'latin1' : 'utf8', start, start + len)
        const values = JSON.parse(text)
        if (!Array.isArray(values) || values.length !== batch.readUInt32LE(off + 8)) throw new Error('malformed values record')
        return values
      }
      off += RECORD_HEADER + len
    }
    throw new Error('missing values record')
  }

  _dispatch(batch, from, joined, nextJoined) {
    const resumed = this._dispatching
    this._dispatching = false
    const end = batch.length
    let values = joined
    let vi = nextJoined
    let off = from
    while (off + RECORD_HEADER <= end) {
      const kind = batch[off]
      const flags = batch[off + 1]
      const ticket = batch.readUInt32LE(off + 4)
      const handler = batch.readUInt32LE(off + 8)
      const len = batch.readUInt32LE(off + 12)
      const start = off + RECORD_HEADER
      off = start + len
      try {
        if (kind === KIND_TASK || kind === KIND_EVENT) {
          if (flags & FLAG_JOINED) {
            if (values === null) values = this._joinedValues(batch, off)
            this._runWith(kind, ticket, this._entry(kind, handler), flags & ~FLAG_JOINED, values[vi++])
            continue
          }
          const entry = this._entry(kind, handler)
          if (len === 0) this._runWith(kind, ticket, entry, flags, undefined)
          else this._run(kind, ticket, entry, flags, batch.toString('utf8', start, start + len))
          if (len >= LARGE_CALL && off + RECORD_HEADER <= end) {
            // Let this call's promise jobs (and so its answer) run before
            // the next call is parsed: a batch of large inputs then does not
            // keep every parsed input alive at once.
            const next = off
            const joinedNow = values
            const viNow = vi
            this._dispatching = true
            queueMicrotask(() => this._dispatch(batch, next, joinedNow, viNow))
            return
          }
        } else if (kind === KIND_BODY_CHUNK) {
          const body = this._inStreams.get(ticket)
          if (body) body._chunk(batch.subarray(start, start + len))
        } else if (kind === KIND_BODY_END) {
          const body = this._inStreams.get(ticket)
          if (body) body._end()
        } else if (kind === KIND_BODY_ERROR) {
          // The body broke off: the client went away mid-upload.
          this._clientGone(ticket)
        } else if (kind === KIND_RESUME) {
          const out = this._outStreams.get(ticket)
          if (out) out.resume()
        } else if (kind === KIND_GONE) {
          const out = this._outStreams.get(ticket)
          this._outStreams.delete(ticket)
          this._clientGone(ticket)
          if (out) out.gone()
        } else if (kind === KIND_ABORT) {
          this._clientGone(ticket)
        } else if (kind === KIND_AUTH_FAILED) {
          this._logAuthFailure(JSON.parse(batch.toString('utf8', start, start + len)))
        } else if (kind === KIND_ORIGIN) {
          const origin = flags === 1 ? batch.toString('latin1', start, start + len) : undefined
          this._native.completeText(ticket, this._resolveOrigin(origin))
        } else if (kind === KIND_SERIALIZE) {
          this._native.completeText(ticket, this._reserialize(batch.toString('utf8', start, start + len)))
        } else if (kind === KIND_AUTH) {
          this._runValidator(ticket)
        }
      } catch (err) {
        this._logError('dispatch', undefined, err)
        if (kind === KIND_TASK || kind === KIND_EVENT) this._answer(ticket, 500, this._fixed.internal)
      }
    }
    if (resumed && (this._outOff > 0 || this._joined.length > 0)) this._scheduleFlush()
  }

  /** The client went away: abort the handler's signal, fail its body stream. */
  _clientGone(ticket) {
    const controller = this._controllers.get(ticket)
    if (controller) {
      this._controllers.delete(ticket)
      controller.abort(this._reason())
    }
    const body = this._inStreams.get(ticket)
    if (body) body._fail(this._reason())
    const out = this._outStreams.get(ticket)
    if (out) {
      // A streamed answer already under way: stop its source and end it.
      this._outStreams.delete(ticket)
      out.gone()
      this._native.endStream(ticket)
    }
  }

  /** The call is answered: let go of what it held. */
  _done(ticket, ctx) {
    if (ctx._signal !== undefined) this._controllers.delete(ticket)
    if (ctx._req !== undefined) ctx._req._release()
  }

  /** The registered handler in `slot`, if any. */
  _entry(kind, slot) {
    return kind === KIND_TASK ? this._tasks[slot] : this._events[slot]
  }

  /** Runs a call whose body is JSON text still to parse. */
  _run(kind, ticket, entry, bodyKind, text) {
    if (!entry || !entry.fn || (bodyKind !== BODY_JSON && kind === KIND_TASK)) {
      this._runWith(kind, ticket, entry, bodyKind, undefined)
      return
    }
    let value
    try {
      value = this._parse(text)
    } catch {
      this._answer(ticket, 400, this._fixed.invalidJson)
      return
    }
    this._runWith(kind, ticket, entry, bodyKind, value)
  }

  /** Runs a call whose body is parsed (`value`; `undefined` when empty). */
  _runWith(kind, ticket, entry, bodyKind, value) {
    if (!entry || !entry.fn) {
      // Unregistered between the native lookup and now.
      const what = kind === KIND_TASK ? 'Task' : 'Event'
      const error = { message: `${what} ${entry ? entry.id : ''} not found`, code: 'NOT_FOUND' }
      this._answer(ticket, 404, this._envelope({ ok: false, error }, JSON.stringify({ ok: false, error })))
      return
    }
    if (kind === KIND_TASK && bodyKind !== BODY_JSON) {
      // Raw and multipart bodies stream in; the server did not read them.
      const ctx = new RequestContext(this, ticket)
      ctx._req = new RequestBody(this, ticket, ctx, true)
      if (bodyKind === BODY_MULTIPART) this._runMultipart(entry, ticket, ctx)
      else this._invoke(kind, entry, ticket, ctx, undefined, false)
      return
    }
    const ctx = new RequestContext(this, ticket)
    let returnPayload = false
    let input
    if (kind === KIND_TASK) {
      if (bodyKind !== BODY_JSON || !value || typeof value !== 'object') input = value
      else input = hasOwn(value, 'input') ? value.input : value
    } else {
      returnPayload = Boolean(value != null && value.returnPayload)
      input = value == null ? undefined : value.payload
      ctx.returnPayload = returnPayload
    }
    this._invoke(kind, entry, ticket, ctx, input, returnPayload)
  }

  _invoke(kind, entry, ticket, ctx, input, returnPayload) {
    let out
    try {
      out = entry.fn(input, ctx)
    } catch (err) {
      this._failed(kind, entry.id, ticket, ctx, err)
      return
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      out.then(
        (result) => this._succeeded(kind, entry.id, ticket, ctx, result, input, returnPayload),
        (err) => this._failed(kind, entry.id, ticket, ctx, err),
      )
    } else {
      this._succeeded(kind, entry.id, ticket, ctx, out, input, returnPayload)
    }
  }

  async _runMultipart(entry, ticket, ctx) {
    let parsed
    try {
      parsed = await multipartParser().parseMultipart(ctx._req, ctx.headers, {
        serializer: { parse: (text) => this._parse(text) },
        limits: this._multipartLimits,
        signal: ctx.signal,
      })
    } catch (err) {
      this._failed(KIND_TASK, entry.id, ticket, ctx, err)
      return
    }
    if (!parsed.ok) {
      this._answerResponse(ticket, ctx, parsed.response)
      return
    }
    let result
    let error
    let failed = false
    try {
      result = await entry.fn(parsed.value, ctx)
    } catch (err) {
      failed = true
      error = err
    }
    const finalized = await parsed.finalize
    if (!finalized.ok) {
      if (!(ctx._res && ctx._res.headersSent)) this._answerResponse(ticket, ctx, finalized.response)
      else this._done(ticket, ctx)
      return
    }
    if (failed) this._failed(KIND_TASK, entry.id, ticket, ctx, error)
    else this._succeeded(KIND_TASK, entry.id, ticket, ctx, result, parsed.value, false)
  }

  /** A `{ status, body }` error answer, cleaned as the reference cleans it. */
  _answerResponse(ticket, ctx, response) {
    this._done(ticket, ctx)
    const status = typeof response.status === 'number' ? response.status : 500
    const error = (response.body && response.body.error) || { message: 'Internal Error', code: 'INTERNAL_ERROR' }
    let clean
    if (status === 500) {
      clean = {
        message: typeof error.id === 'string' && typeof error.message === 'string' ? error.message : 'Internal Error',
        code: typeof error.code === 'string' ? error.code : 'INTERNAL_ERROR',
      }
      if (typeof error.id === 'string') clean.id = error.id
      if (error.data !== undefined) clean.data = error.data
    } else {
      clean = {}
      for (const [k, v] of Object.entries(error)) if (k !== 'stack' && k !== 'cause' && k !== 'sql') clean[k] = v
    }
    this._answer(ticket, status, this._envelope({ ok: false, error: clean }, JSON.stringify({ ok: false, error: clean })))
  }

  /** Answers with a stream: a Readable or `{ stream, status, contentType, headers }`. */
  _streamAnswer(ticket, ctx, value) {
    let source = value
    let status = 200
    let contentType = 'application/octet-stream'
    let headers
    if (!isReadable(value)) {
      source = value.stream
      if (value.status !== undefined) status = value.status
      if (value.contentType !== undefined) contentType = value.contentType
      headers = value.headers
    }
    const list = headerList(contentType, headers)
    if (!this._native.startStream(ticket, status, JSON.stringify(list), false)) {
      if (typeof source.destroy === 'function') source.destroy()
      this._done(ticket, ctx)
      return
    }
    pipeOut(this, ticket, source, () => this._done(ticket, ctx))
  }

  _succeeded(kind, id, ticket, ctx, result, input, returnPayload) {
    if (ctx._res !== undefined && (ctx._res.headersSent || ctx._res.writableEnded)) {
      // The handler wrote its answer itself.
      return
    }
    if (kind === KIND_TASK && (isReadable(result) || isStreamingResponse(result))) {
      this._streamAnswer(ticket, ctx, result)
      return
    }
    this._done(ticket, ctx)
    // Without a serializer, results are written together at the end of the
    // round; not while a batch of large calls runs call by call (their
    // results go out one by one, so they need not all be alive at once).
    if (this._serializer === null && !this._dispatching && (kind === KIND_TASK || returnPayload)) {
      const value = kind === KIND_TASK || result !== undefined ? result : input
      if (joinable(value)) {
        this._joinResult(ticket, kind, id, ctx, value)
        return
      }
    }
    let body
    try {
      if (kind === KIND_TASK) body = this._okBody(result)
      else if (returnPayload) body = this._okBody(result === undefined ? input : result)
      else body = this._fixed.ok
    } catch (err) {
      this._failed(kind, id, ticket, ctx, err)
      return
    }
    this._answer(ticket, 200, body)
  }

  _failed(kind, id, ticket, ctx, err) {
    this._done(ticket, ctx)
    if (ctx._res !== undefined && ctx._res.headersSent) {
      // Mid-stream failure: end the answer cleanly, as the reference does.
      this._logError(kind === KIND_TASK ? 'task' : 'event', id, err)
      if (!ctx._res.writableEnded) ctx._res.end()
      return
    }
    if (isCancellation(err)) {
      this._answer(ticket, 499, this._fixed.aborted)
      return
    }
    if (err instanceof ProtocolError) {
      const error = { message: err.message, code: err.code, ...(err.extra || {}) }
      const status = isValidHttpCode(err.status) ? err.status : 500
      try {
        this._answer(ticket, status, this._stringify({ ok: false, error }))
        return
      } catch (stringifyError) {
        err = stringifyError
      }
    }
    const where = kind === KIND_TASK ? 'task' : 'event'
    this._logError(where, id, err)
    let typed
    try {
      typed = this._resolveError ? this._resolveError(err) : defaultResolveError(err)
    } catch {
      typed = undefined
    }
    if (typed) {
      const httpCode = isValidHttpCode(typed.httpCode) ? typed.httpCode : undefined
      const message = err instanceof Error && err.message ? err.message : 'Internal Error'
      const error = { message, code: 'INTERNAL_ERROR' }
      if (typeof typed.id === 'string') error.id = typed.id
      if (typed.data !== undefined) error.data = typed.data
      if (httpCode !== undefined) error.httpCode = httpCode
      try {
        this._answer(ticket, httpCode ?? 500, this._stringify({ ok: false, error }))
        return
      } catch (stringifyError) {
        this._logError(where, id, stringifyError)
      }
    }
    this._answer(ticket, 500, this._fixed.internal)
  }

  _logError(where, id, err) {
    try {
      const message = err instanceof Error ? err.message : String(err)
      this._logger.error(`[runner-native] ${where}${id ? ` ${id}` : ''} failed: ${message}`, err)
    } catch {
      // A failing logger must not take the server down.
    }
  }

  /** A refused request, logged as the reference does (`exposure.auth.failure`). */
  _logAuthFailure(record) {
    try {
      if (typeof this._logger.warn === 'function') this._logger.warn('exposure.auth.failure', record)
    } catch {
      // A failing logger must not take the server down.
    }
  }

  _resolveOrigin(origin) {
    const spec = this._originSpec
    try {
      if (spec instanceof RegExp) {
        return origin && spec.test(origin) ? origin : null
      }
      if (typeof spec === 'function') {
        const out = spec(origin)
        return out ? String(out) : null
      }
    } catch (err) {
      this._logError('cors origin', undefined, err)
    }
    return null
  }

  _runValidator(ticket) {
    const ctx = new RequestContext(this, ticket)
    const info = { headers: ctx.headers, method: ctx.method, url: ctx.url, path: ctx.path }
    let out
    try {
      out = this._validate(info)
    } catch {
      this._native.completeAuth(ticket, false)
      return
    }
    Promise.resolve(out).then(
      (ok) => this._native.completeAuth(ticket, ok === true || Boolean(ok && ok.ok)),
      () => this._native.completeAuth(ticket, false),
    )
  }
}

module.exports = { TunnelServer, ProtocolError }
