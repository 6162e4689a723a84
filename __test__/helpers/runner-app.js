'use strict';
// The one builder of Runner apps for the test suites. An app registers an exposure first —
// Runner's own `nodeExposure` (the reference) or this package's `nativeExposure` — then the
// items a suite needs (tasks, events, hooks, tunnel resources, errors, contexts), and is run
// listening on an ephemeral port of 127.0.0.1.
//
//   startApp(exposure, { http, items, serializer, listen, runOptions, id })
//   startBoth((exposure) => startApp(exposure, ...))   the same app once per exposure
//   handlerItems({ tasks, events, errors })            a standalone server's handlers as Runner items
//   tunnelResource(id, value)                          a resource tagged globals.tags.tunnel

const { r, run, globals, nodeExposure, useExposureContext } = require('@bluelibs/runner');
const { nativeExposure } = require('../../runner');

const RUN_OPTIONS = Object.freeze({ logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });

/** Plain JSON as the app's serializer (the reference's answers then read like a standalone server's). */
const JSON_SERIALIZER = Object.freeze({
  parse: (text) => JSON.parse(text),
  stringify: (value) => JSON.stringify(value),
});

let appCounter = 0;

/**
 * Runs an app exposed by `exposure` (nodeExposure or nativeExposure).
 *  http:       the exposure's `http` config; `listen` (port 0 on 127.0.0.1) is added unless
 *              `http.listen` is given or `listen` is false
 *  items:      what the app registers after the exposure
 *  serializer: the app's serializer: Runner's own (default, or 'runner'), 'json' (plain JSON)
 *              or a { parse, stringify } object
 *  runOptions: more options for Runner's run() (e.g. initMode)
 *  id:         the app resource's id
 * Resolves { kind, runtime, value, logs, port, host, url, baseUrl, close() } (`logs`: what the
 * app's Runner logger logged; `port` and the urls are null when nothing listens).
 */
async function startApp(exposure, { http = {}, items = [], serializer, listen = true, runOptions = {}, id } = {}) {
  const isNode = exposure === nodeExposure;
  if (!isNode && exposure !== nativeExposure)
    throw new Error('startApp: exposure must be nodeExposure or nativeExposure');
  const config = listen && http.listen === undefined ? { ...http, listen: { port: 0, host: '127.0.0.1' } } : http;
  let app = r.resource(id ?? `test.app.${++appCounter}`).register([exposure.with({ http: config }), ...items]);
  const ser = serializer === 'json' ? JSON_SERIALIZER : serializer;
  if (ser && typeof ser === 'object') {
    app = app.overrides([r.override(globals.resources.serializer, async () => ser)]);
  } else if (ser !== undefined && ser !== 'runner') {
    throw new Error(`unknown serializer mode ${ser}`);
  }
  const runtime = await run(app.build(), { ...RUN_OPTIONS, ...runOptions });
  const logs = [];
  runtime.getResourceValue(globals.resources.logger).onLog((log) => logs.push(log));
  const value = runtime.getResourceValue(exposure);
  const port = isNode ? (value.server?.address()?.port ?? null) : value.port;
  const url = port === null ? null : `http://127.0.0.1:${port}`;
  let closed = false;
  return {
    kind: isNode ? 'nodeExposure' : 'nativeExposure',
    runtime,
    value,
    logs,
    port,
    host: '127.0.0.1',
    url,
    baseUrl: url === null ? null : url + value.basePath.replace(/\/$/, ''),
    async close() {
      if (closed) return;
      closed = true;
      if (isNode) value.server?.closeAllConnections?.();
      await runtime.dispose();
    },
  };
}

/**
 * The same app twice: `ref` exposed by nodeExposure, `nat` by nativeExposure.
 * `start(exposure)` starts the app with the given exposure resource (see startApp).
 */
async function startBoth(start) {
  const ref = await start(nodeExposure);
  let nat;
  try {
    nat = await start(nativeExposure);
  } catch (e) {
    await ref.close();
    throw e;
  }
  return {
    ref,
    nat,
    async close() {
      await Promise.allSettled([ref.close(), nat.close()]);
    },
  };
}

/** A resource tagged `globals.tags.tunnel` whose value is `value` (or what `value()` resolves). */
function tunnelResource(id, value, { dependencies } = {}) {
  let builder = r.resource(id).tags([globals.tags.tunnel]);
  if (dependencies) builder = builder.dependencies(dependencies);
  return builder.init(async (config, deps) => (typeof value === 'function' ? value(config, deps) : value)).build();
}

/** The `ctx` a standalone server's handler gets, read from useExposureContext() (a task's only). */
function exposureCtx() {
  try {
    const ex = useExposureContext();
    return {
      requestId: ex.headers['x-runner-request-id'],
      headers: ex.headers,
      method: ex.method,
      path: ex.url.pathname,
      signal: ex.signal,
      context: undefined,
    };
  } catch {
    return {}; // not called through the exposure
  }
}

/**
 * The handlers of a standalone TunnelServer as Runner items, so a Runner app can serve them:
 *   tasks:  { [id]: async (input, ctx) => result }          a task each
 *   events: { [id]: async (payload, ctx) => newPayload }   an event each, with a hook running
 *                                                          the handler (a result replaces the payload)
 *   errors: [ r.error(...).build(), ... ]                  registered as they are (typed errors)
 */
function handlerItems({ tasks = {}, events = {}, errors = [] } = {}) {
  const items = [];
  for (const [id, fn] of Object.entries(tasks)) {
    items.push(
      r
        .task(id)
        .run(async (input) => fn(input, exposureCtx()))
        .build(),
    );
  }
  for (const [id, fn] of Object.entries(events)) {
    const ev = r.event(id).build();
    const hook = r
      .hook(`${id}.__testHook`)
      .on(ev)
      .run(async (e) => {
        const out = await fn(e.data, {});
        if (out !== undefined) e.data = out;
      })
      .build();
    items.push(ev, hook);
  }
  items.push(...errors);
  return items;
}

module.exports = {
  startApp,
  startBoth,
  tunnelResource,
  handlerItems,
  nodeExposure,
  nativeExposure,
  JSON_SERIALIZER,
  RUN_OPTIONS,
};
