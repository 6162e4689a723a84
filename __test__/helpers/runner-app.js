'use strict';
// One Runner application, built by a factory so that the same definition (same ids) can be
// run twice: once exposed by Runner's `nodeExposure`, once by this package's `nativeExposure`.
//
// Exposure resources are registered FIRST and tunnel resources after them (and one tunnel
// waits for a slow resource), so the native allow-list has to follow tunnels that initialise
// after the exposure, as the reference (which recomputes per request) does.

const {
  r,
  run,
  globals,
  nodeExposure,
  useExposureContext,
  cancellationError,
  createContext,
} = require('@bluelibs/runner');
const { nativeExposure } = require('../../runner');

// The one token of the test suites.
const { TOKEN } = require('./fixtures');
const API_KEY = 'let-me-in';

// Error helpers and contexts are shared by both apps (only ids matter to Runner), so tests and
// clients can use them too.
const errors = {
  outOfStock: r
    .error('rn.errors.outOfStock')
    .httpCode(409)
    .format((d) => `Out of stock: ${d.sku}`)
    .build(),
  noHttpCode: r
    .error('rn.errors.noHttpCode')
    .format(() => 'typed without http code')
    .build(),
  explicit500: r
    .error('rn.errors.explicit500')
    .httpCode(500)
    .format(() => 'typed with 500')
    .build(),
  gone: r.error('rn.errors.gone').httpCode(410).build(),
  // NOT registered in the app: the reference does not treat it as typed.
  unregistered: r
    .error('rn.errors.unregistered')
    .httpCode(422)
    .format(() => 'not registered')
    .build(),
};
const userContext = createContext('rn.ctx.user');
const tenantContext = createContext('rn.ctx.tenant');

const readCtx = (ctx) => {
  try {
    return ctx.use();
  } catch {
    return null;
  }
};

/**
 * options.tunnels: 'full' (default) | 'none' | 'client' (a client-mode tunnel only)
 * options.validator: register an auth validator task (x-api-key: let-me-in)
 */
function buildApp(exposureWith, options = {}) {
  const tunnels = options.tunnels ?? 'full';
  const items = [exposureWith];

  const stamp = r.middleware
    .task('rn.mw.stamp')
    .run(async ({ task, next }) => {
      const out = await next(task.input);
      return { ...out, stamped: true };
    })
    .build();

  const t = (id, fn, extra = (b) => b) => extra(r.task(id)).run(fn).build();
  const tasks = {
    add: t('rn.add', async ({ a, b }) => a + b),
    echo: t('rn.echo', async (input) => input),
    dates: t('rn.dates', async ({ when, n }) => ({
      isDate: when instanceof Date,
      next: new Date(when.getTime() + 86400000),
      doubled: n * 2n,
      none: undefined,
    })),
    buy: t('rn.buy', async ({ sku }) => errors.outOfStock.throw({ sku })),
    noHttpCode: t('rn.noHttpCode', async () => errors.noHttpCode.throw({ x: 1 })),
    explicit500: t('rn.explicit500', async () => errors.explicit500.throw({ y: 2 })),
    goneNoData: t('rn.goneNoData', async () => {
      try {
        errors.gone.throw({});
      } catch (e) {
        e.data = undefined;
        throw e;
      }
    }),
    unregistered: t('rn.unregistered', async () => errors.unregistered.throw({ a: 1 })),
    crash: t('rn.crash', async () => {
      throw new Error('internal detail');
    }),
    abortError: t('rn.abortError', async () => {
      const e = new Error('The operation was aborted');
      e.name = 'AbortError';
      throw e;
    }),
    cancel: t('rn.cancel', async () => cancellationError.throw({ reason: 'stop' })),
    validated: t(
      'rn.validated',
      async (input) => ({ n: input.n }),
      (b) =>
        b.inputSchema({
          parse(v) {
            if (!v || typeof v.n !== 'number') throw new Error('n must be a number');
            return { n: v.n * 10 };
          },
        }),
    ),
    middlewared: t(
      'rn.middlewared',
      async () => ({ ran: true }),
      (b) => b.middleware([stamp]),
    ),
    whoami: t('rn.whoami', async () => ({ user: readCtx(userContext), tenant: readCtx(tenantContext) })),
    whoamiNoCtx: t('rn.whoamiNoCtx', async () => ({ user: readCtx(userContext) })),
    exposure: t('rn.exposure', async () => {
      const ex = useExposureContext();
      return {
        basePath: ex.basePath,
        method: ex.method,
        isUrl: ex.url instanceof URL,
        pathname: ex.url.pathname,
        search: ex.url.search,
        custom: ex.headers['x-custom'] ?? null,
        requestId: ex.headers['x-runner-request-id'],
        hasSignal: ex.signal instanceof AbortSignal,
        aborted: ex.signal.aborted,
        reqMethod: ex.req.method,
        reqUrl: ex.req.url,
      };
    }),
    hidden: t('rn.hidden', async () => 'should not be reachable'),
    selOne: t('rn.sel.one', async () => 'selected one'),
  };
  items.push(stamp, ...Object.values(tasks));
  if (options.validator) {
    items.push(
      r
        .task('rn.auth.validator')
        .tags([globals.tags.authValidator])
        .run(async ({ headers, method, url, path }) => ({
          ok: headers['x-api-key'] === API_KEY && method === 'POST' && typeof url === 'string' && path.startsWith('/'),
        }))
        .build(),
    );
  }

  const ordered = r.event('rn.ordered').build();
  const noop = r.event('rn.noop').build();
  const parallel = r.event('rn.parallel').parallel(true).build();
  const failing = r.event('rn.failing').build();
  const ctxEvent = r.event('rn.ctxEvent').build();
  const hiddenEvent = r.event('rn.hiddenEvent').build();
  const clear = r.event('rn.clear').build();
  const validatedEvent = r
    .event('rn.validatedEvent')
    .payloadSchema({
      parse(v) {
        if (!v || typeof v.n !== 'number') throw new Error('n must be a number');
        return { n: v.n + 1 };
      },
    })
    .build();
  items.push(
    clear,
    validatedEvent,
    r
      .hook('rn.clear.hook')
      .on(clear)
      .run(async (e) => {
        e.data = undefined;
      })
      .build(),
    ordered,
    noop,
    parallel,
    failing,
    ctxEvent,
    hiddenEvent,
    r
      .hook('rn.ordered.hook')
      .on(ordered)
      .run(async (e) => {
        e.data = { ...e.data, seen: true };
      })
      .build(),
    r
      .hook('rn.parallel.hook')
      .on(parallel)
      .run(async () => {})
      .build(),
    r
      .hook('rn.failing.hook')
      .on(failing)
      .run(async (e) => {
        if (e.data && e.data.typed) errors.outOfStock.throw({ sku: 'EV' });
        throw new Error('hook failed');
      })
      .build(),
    r
      .hook('rn.ctxEvent.hook')
      .on(ctxEvent)
      .run(async (e) => {
        e.data = { user: readCtx(userContext) };
      })
      .build(),
  );

  items.push(errors.outOfStock, errors.noHttpCode, errors.explicit500, errors.gone, userContext, tenantContext);

  if (tunnels === 'full') {
    const slow = r
      .resource('rn.slow')
      .init(async () => {
        await new Promise((res) => setTimeout(res, 20));
        return 'slow';
      })
      .build();
    const main = r
      .resource('rn.tunnel.main')
      .tags([globals.tags.tunnel])
      .dependencies({ slow })
      .init(async () => ({
        mode: 'server',
        transport: 'http',
        tasks: [
          tasks.add.id,
          tasks.echo.id,
          tasks.dates.id,
          tasks.buy.id,
          tasks.noHttpCode.id,
          tasks.explicit500.id,
          tasks.goneNoData.id,
          tasks.unregistered.id,
          tasks.crash.id,
          tasks.abortError.id,
          tasks.cancel.id,
          tasks.validated.id,
          tasks.whoami.id,
          tasks.exposure.id,
          tasks.middlewared, // a definition object, not an id
        ],
        events: [ordered.id, noop.id, parallel.id, failing.id, ctxEvent, clear.id, validatedEvent.id],
      }))
      .build();
    const selector = r
      .resource('rn.tunnel.selector')
      .tags([globals.tags.tunnel])
      .init(async () => ({
        // "both": served here AND the selected tasks are tunneled (their run is replaced)
        mode: 'both',
        tasks: (task) => task.id.startsWith('rn.sel.'),
        run: async (task, input) => ({ tunneled: task.id, input }),
      }))
      .build();
    const noCtx = r
      .resource('rn.tunnel.noCtx')
      .tags([globals.tags.tunnel])
      .init(async () => ({
        mode: 'server',
        transport: 'http',
        tasks: [tasks.whoamiNoCtx.id],
        allowAsyncContext: false,
      }))
      .build();
    const otherTransport = r
      .resource('rn.tunnel.other')
      .tags([globals.tags.tunnel])
      .init(async () => ({ mode: 'server', transport: 'carrier-pigeon', tasks: [tasks.hidden.id] }))
      .build();
    items.push(slow, main, selector, noCtx, otherTransport);
  } else if (tunnels === 'client') {
    items.push(
      r
        .resource('rn.tunnel.client')
        .tags([globals.tags.tunnel])
        .init(async () => ({ mode: 'client', transport: 'http', tasks: [tasks.add.id], run: async () => 'remote' }))
        .build(),
    );
  }
  return r.resource('rn.app').register(items).build();
}

async function startApp(exposure, http, options = {}) {
  const logs = [];
  const app = buildApp(exposure.with({ http: { ...http, listen: { port: 0, host: '127.0.0.1' } } }), options);
  const runtime = await run(app, { logs: { printThreshold: null }, shutdownHooks: false, errorBoundary: false });
  runtime.getResourceValue(globals.resources.logger).onLog((log) => logs.push(log));
  const value = runtime.getResourceValue(exposure);
  const port = exposure === nodeExposure ? value.server.address().port : value.port;
  let closed = false;
  return {
    runtime,
    value,
    logs,
    port,
    host: '127.0.0.1',
    url: `http://127.0.0.1:${port}`,
    async close() {
      if (closed) return;
      closed = true;
      if (exposure === nodeExposure) value.server.closeAllConnections?.();
      await runtime.dispose();
    },
  };
}

/**
 * One app twice: `ref` exposed by nodeExposure, `nat` by nativeExposure.
 * `start(exposure)` starts the app with the given exposure resource.
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

/** The same app twice (see `startBoth`), same http config. */
function startRunnerPair(http = {}, options = {}) {
  return startBoth((exposure) => startApp(exposure, http, options));
}

module.exports = { buildApp, startApp, startBoth, startRunnerPair, errors, userContext, tenantContext, TOKEN, API_KEY };
