'use strict';

// `@bluelibs/runner-native/runner`: `nativeExposure`, a drop-in for Runner's
// `nodeExposure`. The same config (`nativeExposure.with({ http: {...} })`),
// the same answers, served by the native TunnelServer of this package.
//
// Runner semantics are reproduced from `@bluelibs/runner` 5.5's node exposure:
// tasks run through the task runner, events through the event manager, the
// allow-list comes from server-mode tunnel resources (`globals.tags.tunnel`),
// typed errors are recognised through the store's error helpers, auth
// validator tasks (`globals.tags.authValidator`) run through the task runner,
// `x-runner-context` hydrates the app's async contexts, and tasks can call
// `useExposureContext()`.

let runner;
try {
  runner = require('@bluelibs/runner');
} catch (err) {
  const e = new Error(
    "@bluelibs/runner-native/runner needs the peer dependency '@bluelibs/runner' (^5.5.0): npm install @bluelibs/runner",
  );
  e.code = 'MODULE_NOT_FOUND';
  e.cause = err;
  throw e;
}

const { r, globals, asyncContext, cancellationError } = runner;
const { TunnelServer, ProtocolError } = require('./index.js');
const { isValidHttpCode, displayMessage, sanitizeError } = require('./lib/outcome.js');
const { errorMessage } = require('./lib/logging.js');

const TUNNEL_TAG_ID = globals.tags.tunnel.id;
const EXPOSURE_CONTEXT_ID = 'platform.node.ctx.exposureRequest';

// Runner's async contexts share one AsyncLocalStorage keyed by context id, so
// providing under the reference's id is what `useExposureContext()` reads.
const ExposureRequestContext = asyncContext({ id: EXPOSURE_CONTEXT_ID });

const isRecord = (v) => !!v && typeof v === 'object';

function resolveBasePath(basePath) {
  let p = basePath ?? '/__runner';
  if (!p.startsWith('/')) p = `/${p}`;
  if (p.endsWith('/') && p !== '/') p = p.slice(0, -1);
  return p;
}

/** Calls a Runner logger method; it may throw or return a rejecting promise. */
function safeLog(logger, level, message, data) {
  try {
    const out = logger[level](message, data);
    if (out && typeof out.catch === 'function') out.catch(() => {});
  } catch {
    // A failing logger must not fail the request.
  }
}

/** The reference's computeAllowList (src/node/tunnel/allowlist.ts). */
function computeAllowList(store, onSelectorError) {
  const taskIds = new Set();
  const eventIds = new Set();
  const taskAcceptsAsyncContext = new Map();
  const eventAcceptsAsyncContext = new Map();
  const merge = (target, id, accepts) => {
    const current = target.get(id);
    target.set(id, current === undefined ? accepts : current && accepts);
  };
  const resourceEntries = Array.from(store.resources?.values() ?? []);
  const tunnelEntries = resourceEntries.filter((e) => e.resource.tags?.some((t) => t?.id === TUNNEL_TAG_ID));
  const collect = (selector, storeMap, pick, ids, accepts, kind, tunnelResourceId, acceptsAsyncContext) => {
    if (!selector) return;
    if (typeof selector === 'function') {
      for (const entry of storeMap.values()) {
        const def = pick(entry);
        try {
          if (selector(def)) {
            ids.add(def.id);
            merge(accepts, def.id, acceptsAsyncContext);
          }
        } catch (error) {
          onSelectorError({ selectorKind: kind, candidateId: def.id, tunnelResourceId, error });
        }
      }
    } else if (Array.isArray(selector)) {
      for (const item of selector) {
        if (typeof item === 'string') {
          ids.add(item);
          merge(accepts, item, acceptsAsyncContext);
        } else if (item && typeof item === 'object' && item.id) {
          ids.add(item.id);
          merge(accepts, item.id, acceptsAsyncContext);
        }
      }
    }
  };
  for (const entry of tunnelEntries) {
    const v = entry?.value;
    if (!v || typeof v !== 'object') continue;
    if (v.mode !== 'server' && v.mode !== 'both') continue;
    if (v.transport && v.transport !== 'http') continue;
    const tunnelResourceId = entry.resource.id;
    const acceptsAsyncContext = v.allowAsyncContext !== false;
    collect(
      v.tasks,
      store.tasks,
      (st) => st.task,
      taskIds,
      taskAcceptsAsyncContext,
      'task',
      tunnelResourceId,
      acceptsAsyncContext,
    );
    collect(
      v.events,
      store.events,
      (se) => se.event,
      eventIds,
      eventAcceptsAsyncContext,
      'event',
      tunnelResourceId,
      acceptsAsyncContext,
    );
  }
  const enabled = tunnelEntries.some(
    (e) =>
      (e?.value?.mode === 'server' || e?.value?.mode === 'both') &&
      (!e.value.transport || e.value.transport === 'http'),
  );
  return { enabled, taskIds, eventIds, taskAcceptsAsyncContext, eventAcceptsAsyncContext };
}

/** The reference's resolveAppErrorExtra: typed errors are those of the store's error helpers. */
function resolveAppErrorExtra(store, error) {
  try {
    for (const helper of store.errors.values()) {
      if (helper.is(error)) {
        if (!isRecord(error)) {
          return {
            id: undefined,
            data: undefined,
            httpCode: isValidHttpCode(helper.httpCode) ? helper.httpCode : undefined,
          };
        }
        const id = typeof error.name === 'string' ? error.name : undefined;
        const runtimeHttpCode = error.httpCode;
        const httpCode = isValidHttpCode(runtimeHttpCode)
          ? runtimeHttpCode
          : isValidHttpCode(helper.httpCode)
            ? helper.httpCode
            : undefined;
        return { id, data: error.data, httpCode };
      }
    }
  } catch {
    // as the reference: a throwing helper means "not typed"
  }
  return undefined;
}

/**
 * The answer the reference's handleRequestError gives (jsonErrorResponse +
 * sanitizeErrorResponse), as a ProtocolError the TunnelServer writes with the
 * app's serializer: key order and `undefined` members are kept as Runner's
 * serializer would see them.
 */
function toProtocolError(store, error) {
  const extra = resolveAppErrorExtra(store, error);
  const status = extra?.httpCode ?? 500;
  const body = { message: displayMessage(error, extra), code: 'INTERNAL_ERROR' };
  if (extra && typeof extra === 'object') for (const [k, v] of Object.entries(extra)) body[k] = v;
  const { message, code, ...rest } = sanitizeError(status, body);
  return new ProtocolError(status, code, message, rest);
}

function clientClosedError() {
  try {
    return cancellationError.throw({ reason: 'Client Closed Request' });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

// The TunnelServer answers an event whose handler resolved `undefined` with the
// payload it was sent; Runner's emitWithResult can legitimately resolve
// `undefined` (a hook cleared the payload) and the reference then answers
// `result: undefined`. The event handler returns this marker instead, and the
// serializer handed to the TunnelServer writes it as `undefined`.
const UNDEFINED_RESULT = Object.freeze({ undefinedResult: true });

function answerSerializer(serializer) {
  return {
    parse: (text) => serializer.parse(text),
    stringify: (value) =>
      serializer.stringify(
        value !== null && typeof value === 'object' && value.result === UNDEFINED_RESULT
          ? { ...value, result: undefined }
          : value,
      ),
  };
}

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

async function createNativeExposure(cfg, deps) {
  const { store, taskRunner, eventManager, logger, serializer } = deps;
  const http = cfg?.http ?? {};
  if (http.server) {
    throw new TypeError(
      'nativeExposure: http.server (attaching to an existing node:http server) is not supported; use http.listen',
    );
  }
  const basePath = resolveBasePath(http.basePath);
  const allowOpen = !!http.dangerouslyAllowOpenExposure;

  // Auth: token(s) as configured, plus validator tasks as createAuthenticator runs them.
  const authCfg = http.auth;
  const validatorTasks = store.getTasksWithTag(globals.tags.authValidator);
  const auth = {};
  // `header: ''` makes the reference look up a header no request can carry: its
  // tokens never match, but it still counts as "token configured" (401, not 500).
  const tokensUnmatchable = authCfg?.header === '';
  if (authCfg?.token && !tokensUnmatchable) auth.token = authCfg.token;
  if (typeof authCfg?.header === 'string' && authCfg.header !== '') auth.header = authCfg.header;
  if (authCfg?.allowAnonymous === true) auth.allowAnonymous = true;
  if (validatorTasks.length > 0 || (authCfg?.token && tokensUnmatchable)) {
    auth.validate = async (info) => {
      const url = info.url ?? '/';
      const input = {
        headers: info.headers,
        method: info.method ?? 'GET',
        url,
        path: new URL(url, 'http://localhost').pathname,
      };
      for (const task of validatorTasks) {
        try {
          const result = await taskRunner.run(task, input);
          if (result?.ok) return true;
        } catch {
          // a failing validator is a "no", as in the reference
        }
      }
      return false;
    };
  }

  const options = {
    // node's listen() also takes a numeric string
    port:
      typeof http.listen?.port === 'string' && /^\d+$/.test(http.listen.port)
        ? Number(http.listen.port)
        : (http.listen?.port ?? 0),
    host: http.listen?.host ?? '127.0.0.1',
    basePath,
    auth,
    disableDiscovery: !!http.disableDiscovery,
    serializer: answerSerializer(serializer),
    logger: {
      error: (message, err) => safeLog(logger, 'error', message, { error: err }),
      warn: (message, data) => safeLog(logger, 'warn', message, data),
    },
    resolveError: (err) => resolveAppErrorExtra(store, err),
  };
  if (http.cors !== undefined) options.cors = http.cors;
  if (http.limits?.json !== undefined || http.limits?.multipart !== undefined) {
    options.limits = {};
    if (http.limits.json !== undefined) options.limits.json = http.limits.json;
    if (http.limits.multipart !== undefined) options.limits.multipart = http.limits.multipart;
  }
  options.abortReason = clientClosedError;
  // The native server's own: the Prometheus endpoint and the access log.
  if (http.metrics !== undefined) options.metrics = http.metrics;
  if (http.onAccess !== undefined) options.onAccess = http.onAccess;
  const server = new TunnelServer(options);

  // Allow-list: the reference recomputes it per request; here it is pushed to the
  // native side whenever it may have changed (now, when a tunnel resource finishes
  // initialising, on globals.events.ready, or on refreshAllowList()).
  let allowList = { taskAcceptsAsyncContext: new Map(), eventAcceptsAsyncContext: new Map() };
  let pushed;
  const reportSelectorError = ({ selectorKind, candidateId, tunnelResourceId, error }) =>
    safeLog(logger, 'warn', '[runner] Tunnel allow-list selector failed; item skipped.', {
      selectorKind,
      candidateId,
      tunnelResourceId,
      error: error instanceof Error ? error : new Error(String(error)),
    });
  const refreshAllowList = () => {
    const list = computeAllowList(store, reportSelectorError);
    allowList = list;
    const json = JSON.stringify({
      enabled: list.enabled,
      allowOpen,
      tasks: Array.from(list.taskIds),
      events: Array.from(list.eventIds),
    });
    if (json !== pushed) {
      server.setAllowList(JSON.parse(json));
      pushed = json;
    }
    return { enabled: list.enabled, tasks: Array.from(list.taskIds), events: Array.from(list.eventIds) };
  };

  // Async contexts from x-runner-context, as withExposureContext / withUserContexts.
  const withUserContexts = (ctx, fn, allowAsyncContext) => {
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
  };

  const failed = (err, logKey, ctx) => {
    if (cancellationError.is(err)) return err; // 499 REQUEST_ABORTED
    safeLog(logger, 'error', logKey, { error: errorMessage(err), requestId: ctx.requestId });
    return toProtocolError(store, err);
  };

  const taskHandler = (id) => async (input, ctx) => {
    try {
      const storeTask = store.tasks.get(id);
      const allow = allowList.taskAcceptsAsyncContext.get(id) ?? true;
      const user = withUserContexts(ctx, () => taskRunner.run(storeTask.task, input), allow);
      return await ExposureRequestContext.provide(new ExposureRequest(ctx, basePath), user);
    } catch (err) {
      throw failed(err, 'exposure.task.error', ctx);
    }
  };

  const eventHandler = (id) => async (payload, ctx) => {
    const storeEvent = store.events.get(id);
    const returnPayload = ctx.returnPayload;
    if (returnPayload && storeEvent.event.parallel) {
      throw new ProtocolError(
        400,
        'PARALLEL_EVENT_RETURN_UNSUPPORTED',
        `Event ${id} is marked parallel; returning a payload is not supported.`,
      );
    }
    try {
      const allow = allowList.eventAcceptsAsyncContext.get(id) ?? true;
      const emit = async () => {
        if (returnPayload) {
          const result = await eventManager.emitWithResult(storeEvent.event, payload, 'exposure:http');
          return result === undefined ? UNDEFINED_RESULT : result;
        }
        await eventManager.emit(storeEvent.event, payload, 'exposure:http');
        return undefined;
      };
      return await withUserContexts(ctx, emit, allow)();
    } catch (err) {
      throw failed(err, 'exposure.event.error', ctx);
    }
  };

  for (const id of store.tasks.keys()) server.registerTask(id, taskHandler(id));
  for (const id of store.events.keys()) server.registerEvent(id, eventHandler(id));
  refreshAllowList();

  // Keep the allow-list current while the rest of the app initialises (tunnel
  // resources may initialise after this one, or lazily after start-up).
  let active = true;
  const isTunnel = (resourceId) =>
    !!store.resources.get(resourceId)?.resource.tags?.some((t) => t?.id === TUNNEL_TAG_ID);
  const previousRecord = Object.prototype.hasOwnProperty.call(store, 'recordResourceInitialized')
    ? store.recordResourceInitialized
    : undefined;
  const originalRecord = store.recordResourceInitialized;
  let recordWrapper;
  if (typeof originalRecord === 'function') {
    recordWrapper = function recordResourceInitialized(resourceId) {
      const out = originalRecord.apply(this, arguments);
      if (active && isTunnel(resourceId)) {
        try {
          refreshAllowList();
        } catch (err) {
          safeLog(logger, 'error', 'exposure.allowList.error', { error: errorMessage(err) });
        }
      }
      return out;
    };
    store.recordResourceInitialized = recordWrapper;
  }
  try {
    eventManager.addListener(globals.events.ready, () => {
      if (active) refreshAllowList();
    });
  } catch {
    // the event manager is locked (lazy initialisation after start-up)
  }

  const value = {
    server,
    basePath,
    host: null,
    port: null,
    url: null,
    baseUrl: null,
    metricsUrl: null,
    stats: () => server.stats(),
    refreshAllowList,
    close: async () => {
      active = false;
      if (recordWrapper && store.recordResourceInitialized === recordWrapper) {
        if (previousRecord === undefined) delete store.recordResourceInitialized;
        else store.recordResourceInitialized = previousRecord;
      }
      await server.close();
    },
  };

  if (http.listen) {
    try {
      const address = await server.listen();
      value.host = address.host;
      value.port = address.port;
      value.url = address.url;
      value.baseUrl = address.url + (basePath === '/' ? '' : basePath);
      value.metricsUrl = address.metricsUrl ?? null;
    } catch (err) {
      await value.close().catch(() => {});
      throw err;
    }
    safeLog(logger, 'info', 'node.exposure.listen', { basePath, port: http.listen.port, host: options.host });
  }
  return value;
}

const nativeExposure = r
  .resource('platform.node.resources.nativeExposure')
  .meta({
    title: 'Native Exposure (HTTP)',
    description:
      'Exposes Runner tasks and events over HTTP from a native (Rust) server, speaking the tunnel protocol like nodeExposure.',
  })
  .dependencies({
    store: globals.resources.store,
    taskRunner: globals.resources.taskRunner,
    eventManager: globals.resources.eventManager,
    logger: globals.resources.logger,
    serializer: globals.resources.serializer,
  })
  .init(async (cfg, deps) => createNativeExposure(cfg, deps))
  .dispose(async (value) => {
    if (value?.close) await value.close();
  })
  .build();

module.exports = {
  nativeExposure,
  ExposureRequestContext,
  // exposed for tests and advanced use
  computeAllowList,
  resolveAppErrorExtra,
};
