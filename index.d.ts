/// <reference types="node" />

import type { Readable } from 'node:stream';
import type { EventEmitter } from 'node:events';

/** How `Access-Control-Allow-Origin` is chosen. */
export type CorsOrigin = string | string[] | RegExp | ((origin: string | undefined) => string | null | undefined);

export interface CorsOptions {
  /** Unset: `*` (or nothing when `credentials` is true). */
  origin?: CorsOrigin;
  /** Preflight `Access-Control-Allow-Methods`; default `POST, OPTIONS`. */
  methods?: string[];
  /** Preflight `Access-Control-Allow-Headers`; default: the requested headers echoed. */
  allowedHeaders?: string[];
  /** `Access-Control-Expose-Headers` on actual answers. */
  exposedHeaders?: string[];
  /** Sends `Access-Control-Allow-Credentials: true`. */
  credentials?: boolean;
  /** Preflight `Access-Control-Max-Age` in seconds. */
  maxAge?: number;
  /** Add `Vary: Origin` when the answer depends on the origin; default true. */
  varyOrigin?: boolean;
}

export interface AuthRequestInfo {
  headers: Record<string, string | string[]>;
  method: string;
  url: string;
  path: string;
}

export interface AuthOptions {
  /** One token or several; compared in constant time. */
  token?: string | string[];
  /** Header carrying the token; default `x-runner-token` (case-insensitive). */
  header?: string;
  /** Without a token (and without `validate`), serve anyone only when true. */
  allowAnonymous?: boolean;
  /** Asked when no token matched; resolve true (or `{ ok: true }`) to let the request in. */
  validate?: (info: AuthRequestInfo) => boolean | { ok: boolean } | Promise<boolean | { ok: boolean }>;
}

export interface Serializer {
  parse(text: string): unknown;
  stringify(value: unknown): string;
}

export interface TypedErrorInfo {
  id?: string;
  data?: unknown;
  httpCode?: number;
}

export interface TunnelServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /**
   * Bind the port with `SO_REUSEPORT` (Linux), so that every process of a `cluster` or pm2
   * group may listen on the same port; the kernel spreads new connections over them. Each
   * process must set it. Default false. The metrics port is never shared.
   */
  reusePort?: boolean;
  /**
   * Share one native listener with the TunnelServers of other isolates of this process (the
   * main thread, `worker_threads`) that listen with `share` on the same host and port: the
   * first binds, the others join (`port: 0` binds a new one; the others then give its port).
   * Each call goes to an isolate that registered its id, the one with the fewest calls queued
   * or running. The options the HTTP side uses must be the same (`workerThreads` and
   * `reusePort` may differ: the first sharer's serve), or `listen()` rejects with code
   * `ERR_SHARE_MISMATCH` naming the option. A sharer that closes gets no new calls, its own
   * (and its streamed answers) finish within `closeGraceMs`; an isolate that goes away (a
   * worker terminated or crashed) has its calls in flight answered 500 `INTERNAL_ERROR`. The
   * port is freed when the last sharer closes. With `metrics` (the same in every sharer), the
   * listener has one set of figures: every sharer's calls count in it, and `stats()`,
   * `metricsText()` and the scrape answer the same in each. With `onAccess` (given to every
   * sharer), each request's record is delivered once, to one sharer's `onAccess`: the first
   * (in joining order) that has taken the delivery before. Default false.
   */
  share?: boolean;
  /** Default `/__runner`; a leading `/` is added and a trailing one dropped. */
  basePath?: string;
  auth?: AuthOptions;
  cors?: CorsOptions;
  /** Shorthand for `cors.origin`. */
  corsOrigins?: string[];
  limits?: {
    json?: { maxSize?: number };
    /** busboy limits for uploads; default 20 MB per file, 10 files, 100 fields, 1 MB per field. */
    multipart?: {
      fieldNameSize?: number;
      fieldSize?: number;
      fields?: number;
      fileSize?: number;
      files?: number;
      parts?: number;
      headerPairs?: number;
    };
  };
  /** Answer `GET {base}/discovery` with 404. */
  disableDiscovery?: boolean;
  /** Default: JSON. Runner's `new Serializer()` works. */
  serializer?: Serializer;
  /** Where handler failures are logged; default `console`. */
  logger?: { error(...args: unknown[]): void; warn?(...args: unknown[]): void };
  /**
   * Called with whatever a handler threw or rejected with, before it is answered; the error
   * it returns (or throws) is answered instead (a `ProtocolError` with its status and code).
   * `call` says which call failed.
   */
  mapError?: (error: unknown, call: { kind: 'task' | 'event'; id: string; requestId: string }) => unknown;
  /** Which thrown values are typed application errors; default: Runner `r.error()` errors. */
  resolveError?: (error: unknown) => TypedErrorInfo | undefined;
  /** The reason given to `ctx.signal` and `ctx.req` when the client goes away; default an `AbortError`. */
  abortReason?: () => Error;
  /** HTTP worker threads; default one per spare core (at least one). */
  workerThreads?: number;
  /**
   * How long a whole request (head and body) may take to arrive, counted from its first
   * bytes as Node counts it, in ms; 0 = no limit.
   * Default 300000 (Node's `requestTimeout`). Too slow: the handler's `ctx.signal` aborts
   * and the client gets `408` (or, once the answer has begun, the connection closes).
   */
  requestTimeout?: number;
  /**
   * How long a keep-alive connection may wait for its next request, in ms; 0 = no limit.
   * Default 5000 (Node's `keepAliveTimeout`). Then the server closes it.
   */
  keepAliveTimeout?: number;
  /**
   * How long `close()` lets in-flight requests finish, in ms; default 10000. Then what is
   * left is aborted (handlers' `ctx.signal` fires) and `close()` resolves.
   */
  closeGraceMs?: number;
  /**
   * Most connections open at once (a positive integer; default: no limit). A connection past it
   * is closed as soon as it is accepted, without an answer, as Node's `server.maxConnections` does.
   */
  maxConnections?: number;
  /**
   * Most calls queued for or running in your handlers at once (a positive integer; default: no
   * limit). A task or event call past it is answered `503` with `Retry-After` and
   * `{"ok":false,"error":{"message":"Server busy","code":"OVERLOADED"}}` from the native side,
   * before auth, without waking JavaScript.
   */
  maxInFlight?: number;
  /** The `Retry-After` of those 503s, in seconds (a non-negative integer); default 1. */
  retryAfterSeconds?: number;
  /**
   * gzip and brotli answers for clients that ask for them (`Accept-Encoding`); default off.
   * `true` is `{ threshold: 1024 }`.
   */
  compression?: boolean | CompressionOptions;
  /** Health and readiness probes, answered natively without waking JS (README "Health checks"). */
  health?: HealthOptions;
  /** HTTPS on the same port; `listen()` then gives an `https://` url. */
  tls?: TlsOptions;
  /**
   * Serve the server's figures (`stats()`) as Prometheus text at `GET {path}`, answered
   * natively without the JS thread. Without `port`, on the server's port, outside
   * `basePath`; with `port`, on a port of its own on the same host (0: any free one),
   * where nothing else is served. No auth: keep it off public networks.
   */
  metrics?: MetricsOptions;
  /**
   * Called with finished requests in batches, at most every 50 ms (never once per
   * request). Records are collected on the HTTP threads, up to 8192 per thread between
   * deliveries; past that they are dropped and counted (`accessLogDropped`). A throw or
   * a rejected promise is logged with `logger.error`; serving goes on.
   */
  onAccess?: (records: AccessRecord[]) => void | Promise<void>;
}

export interface MetricsOptions {
  /** The pathname scraped; default `/metrics`. The query is ignored. */
  path?: string;
  /** A port of its own (0: any free one); default: the server's port. */
  port?: number;
}

/** One finished request, as `onAccess` gets it. */
export interface AccessRecord {
  /** `null` for a request refused before its head was whole (400, 408, 431). */
  method: string | null;
  /** The pathname (normalised as routing sees it; the query is left out), or `null`. */
  path: string | null;
  /** The answer's status; 499 when the client went away before it was written. */
  status: number;
  /** From the head parsed to the answer written. */
  durationMs: number;
  /** Bytes of the request on the wire: head and body (a chunked body with its framing). */
  bytesIn: number;
  /** Bytes of the answer on the wire: head and body. */
  bytesOut: number;
  /** `x-runner-request-id` as answered; `null` outside the base path or for a refused head. */
  requestId: string | null;
}

/** A histogram of durations: cumulative counts per upper bound (`le`, seconds; the last is `Infinity`). */
export interface DurationHistogram {
  count: number;
  /** Seconds, all observations added up. */
  sum: number;
  buckets: { le: number; count: number }[];
}

export type RequestKindCounts<T> = { task: T; event: T; discovery: T; other: T };

/**
 * What the server counted since it was constructed (across `listen()`/`close()`): the
 * figures of its Prometheus metrics (`runner_native_*`).
 */
export interface ServerStats {
  /**
   * Requests by kind and status (`{ task: { 200: 3, 404: 1 }, ... }`). `other`: anything
   * not a task, event or discovery request (404s outside the base path, preflights,
   * scrapes, refused heads). 499: the client went away before the answer.
   */
  requests: RequestKindCounts<Record<string, number>>;
  /** From each request's head parsed to its answer written, by kind (refused heads have none). */
  requestDurationSeconds: RequestKindCounts<DurationHistogram>;
  /** Task and event calls handed to a handler whose reply has not come yet. */
  callsInFlight: number;
  openConnections: number;
  /** Connections accepted. */
  connections: number;
  /** Calls queued for the JS thread that it has not taken yet. */
  jsQueueDepth: number;
  /** Calls the JS thread has taken. */
  jsCalls: number;
  /**
   * Per batch of jobs the JS thread took, how long it waited: from the wake-up asked for
   * it, or, when JS was busy and fetched the batch itself, from taking the batch before.
   */
  jsBatchWaitSeconds: DurationHistogram;
  /** Request bytes received (heads and bodies; with `tls`, the HTTP bytes before encryption). */
  receivedBytes: number;
  /** Answer bytes written (heads and bodies). */
  sentBytes: number;
  /** Access records dropped because `onAccess` fell behind. */
  accessLogDropped: number;
}

/**
 * Probe paths, outside `basePath`; each is served only when given (`GET` and `HEAD`,
 * `cache-control: no-store`):
 * - `path` (liveness): `200 {"ok":true,"status":"serving"}`, `503 {"ok":false,"status":"draining"}`
 *   once `close()` has begun;
 * - `readyPath` (readiness): `200 {"ok":true,"status":"ready"}`, `503 {"ok":false,"status":"draining"}`,
 *   or `503 {"ok":false,"status":"stalled","stalledMs":n}` when calls have waited longer than
 *   `readyTimeoutMs` for the JS thread to take them (its event loop blocked or swamped).
 */
export interface HealthOptions {
  /** e.g. `/healthz`. */
  path?: string;
  /** e.g. `/readyz`. */
  readyPath?: string;
  /** How long queued calls may wait for the JS thread before readiness fails, in ms; default 5000. */
  readyTimeoutMs?: number;
}

/** PEM text, as a string or the bytes of a file. */
export type Pem = string | Buffer | Uint8Array;

/**
 * The `tls` option. Bad types throw a TypeError naming the field; a bad certificate or
 * key, a mismatched pair or a wrong passphrase make `listen()` reject with code
 * `ERR_TLS_CONFIG`.
 */
export interface TlsOptions {
  /** The certificate chain, leaf first: PEM, or several PEM values. */
  cert: Pem | Pem[];
  /** The private key, PEM: PKCS#8, PKCS#1, SEC1, or encrypted PKCS#8 with `passphrase`. */
  key: Pem;
  /** The CAs client certificates are checked against (with `requestCert`). */
  ca?: Pem | Pem[];
  /** Opens an encrypted PKCS#8 key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`). */
  passphrase?: string;
  /**
   * Require a client certificate signed by one of `ca`; a client without one is refused at
   * the handshake (as Node's https with `rejectUnauthorized: true`). Needs `ca`.
   */
  requestCert?: boolean;
  /** Only `true` (the default): unauthenticated clients are always refused with `requestCert`. */
  rejectUnauthorized?: true;
}

export interface CompressionOptions {
  /** Whole (JSON) answers shorter than this many bytes are sent as they are; default 1024. */
  threshold?: number;
  /** gzip level, 1 (fastest) to 9 (smallest); default 6. */
  gzipLevel?: number;
  /** brotli quality, 0 (fastest) to 11 (smallest); default 4. */
  brotliLevel?: number;
}

/** What a handler gets besides its input. Read it while the handler runs. */
export interface RequestContext {
  /** `x-runner-request-id`: the client's when well-formed, else a fresh UUID. */
  readonly requestId: string;
  /** Request headers as Node presents them (lower-case names). */
  readonly headers: Record<string, string | string[]>;
  readonly method: string;
  /** The request pathname. */
  readonly path: string;
  /** The request target as sent, query included. */
  readonly url: string;
  /** Aborted when the client goes away before the answer. */
  readonly signal: AbortSignal;
  /** The `x-runner-context` header parsed by the serializer. */
  readonly context: Record<string, unknown> | undefined;
  /** Events: whether the caller asked for the payload back. */
  readonly returnPayload: boolean;
  /** The raw request body (`application/octet-stream` calls); ends at once for JSON calls. */
  readonly req: Readable & {
    readonly headers: Record<string, string | string[]>;
    readonly method: string;
    readonly url: string;
  };
  /** Write a streamed answer yourself; once headers are sent the return value is ignored. */
  readonly res: ResponseWriter;
}

/** A `ServerResponse`-like writer for a streamed answer. Emits `'drain'`, `'finish'`, `'close'`. */
export interface ResponseWriter extends EventEmitter {
  statusCode: number;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableNeedDrain: boolean;
  setHeader(name: string, value: string | number | string[]): this;
  getHeader(name: string): string | number | string[] | undefined;
  getHeaders(): Record<string, string | number | string[]>;
  hasHeader(name: string): boolean;
  removeHeader(name: string): void;
  writeHead(status: number, headers?: Record<string, string | number | string[]>): this;
  write(chunk: string | Buffer | Uint8Array, callback?: () => void): boolean;
  end(chunk?: string | Buffer | Uint8Array, callback?: () => void): this;
}

/** A file of a `multipart/form-data` upload, compatible with Runner's `InputFile`. */
export interface InputFile {
  name: string;
  type?: string;
  size?: number;
  lastModified?: number;
  extra?: Record<string, unknown>;
  /** A single-use stream of the file's bytes. */
  resolve(): Promise<{ stream: Readable }>;
  stream(): Readable;
  toTempFile(dir?: string): Promise<{ path: string; bytesWritten: number }>;
}

/** What a task may return to answer with a stream. */
export interface StreamingResult {
  stream: Readable;
  /** Default 200. */
  status?: number;
  /** Default `application/octet-stream`. */
  contentType?: string;
  /** `set-cookie`, CORS and security headers are dropped. */
  headers?: Record<string, string | number | string[]>;
}

export type TaskHandler<I = any, R = any> = (input: I, ctx: RequestContext) => R | Promise<R>;
export type EventHandler<P = any> = (
  payload: P,
  ctx: RequestContext,
) => P | undefined | void | Promise<P | undefined | void>;

export interface ServerAddress {
  host: string;
  port: number;
  url: string;
  /** The same as `host`, and the address family: what node's `server.address()` gives. */
  address: string;
  family: 'IPv4' | 'IPv6';
  /** Where the metrics are scraped (with `metrics` set), e.g. `http://127.0.0.1:7070/metrics`. */
  metricsUrl?: string;
}

/** Runner's tunnel protocol served by a native (Rust) HTTP server. */
export declare class TunnelServer {
  constructor(options?: TunnelServerOptions);
  registerTask<I = any, R = any>(id: string, handler: TaskHandler<I, R>): this;
  registerEvent<P = any>(id: string, handler: EventHandler<P>): this;
  /** Takes effect at once; returns whether the id was registered. */
  unregisterTask(id: string): boolean;
  unregisterEvent(id: string): boolean;
  getTaskIds(): string[];
  getEventIds(): string[];
  /**
   * Restrict calls to an allow-list (403 before 404, as Runner's tunnel
   * resources do); discovery then lists it. `null` serves every registered id.
   */
  setAllowList(list: { enabled: boolean; allowOpen?: boolean; tasks?: string[]; events?: string[] } | null): void;
  /** Resolves once bound; rejects with `code` set (`EADDRINUSE`, ...). */
  listen(): Promise<ServerAddress>;
  address(): ServerAddress | null;
  /**
   * The server's figures, counted since it was constructed (with or without `metrics`); while
   * it listens with `share`, its listener's, counted since the listener was bound.
   */
  stats(): ServerStats;
  /** The same figures in Prometheus' text format (0.0.4), to serve them from elsewhere. */
  metricsText(): string;
  /**
   * Drains: stops accepting at once (new connections are refused), closes idle keep-alive
   * connections, answers what is in flight (the last answer of each connection with
   * `connection: close`), then frees the port. After `closeGraceMs` what is left is
   * aborted. Resolves once done; never blocks the JS thread.
   */
  close(): Promise<void>;
}

/** Throw from a handler to answer `{"ok":false,"error":{message, code, ...extra}}` with `status`. */
export declare class ProtocolError extends Error {
  constructor(status: number, code: string, message: string, extra?: Record<string, unknown>);
  readonly status: number;
  readonly code: string;
  readonly extra?: Record<string, unknown>;
}

/** `serveInWorkers` options. */
export interface ServeInWorkersOptions {
  /**
   * Path of the handlers module each worker loads: it exports `(server) => void | Promise<void>`
   * (registering on the worker's `TunnelServer`), or `{ tasks, events }` of handlers.
   */
  module: string;
  /** Worker threads; default one per core but one (at least one). */
  count?: number;
  /** Every worker's `TunnelServer` options (`share: true` is added). */
  options?: TunnelServerOptions;
  /** Passed to each `new Worker(...)` (e.g. `resourceLimits`, `env`). */
  workerOptions?: Record<string, unknown>;
}

/** What `serveInWorkers` resolves with once every worker listens. */
export interface WorkerGroup extends ServerAddress {
  workers: import('node:worker_threads').Worker[];
  threadIds: number[];
  /** Closes every worker's server (each lets its calls finish) and waits for them to exit. */
  close(): Promise<void>;
}

/**
 * Starts worker threads, each with a `TunnelServer` (`share: true`) set up by `module`, all
 * served from one native listener; the first binds (`options.port`, 0 = any), the others
 * join it. Rejects (and stops the workers) if one fails to start or listen.
 */
export declare function serveInWorkers(options: ServeInWorkersOptions): Promise<WorkerGroup>;
