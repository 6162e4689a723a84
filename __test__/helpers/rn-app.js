'use strict';
// The Runner app of the runner.*.test.js suites (ids rn.*), the same definition (same ids) run
// once exposed by Runner's `nodeExposure` and once by this package's `nativeExposure`
// (helpers/runner-app.js builds and runs it).
//
// Exposure resources are registered FIRST and tunnel resources after them (and one tunnel
// waits for a slow resource), so the native allow-list has to follow tunnels that initialise
// after the exposure, as the reference (which recomputes per request) does.

const { r, globals, useExposureContext, cancellationError, createContext } = require('@bluelibs/runner');
const { startApp, startBoth, tunnelResource } = require('./runner-app');

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

/** A description of a value that tells apart what JSON.parse and the Serializer might give. */
function shapeOf(v, depth = 0) {
  if (v === null || typeof v !== 'object') return typeof v === 'number' && Object.is(v, -0) ? '-0' : typeof v;
  if (depth > 80) return 'deep';
  const proto = Object.getPrototypeOf(v);
  const kind = Array.isArray(v)
    ? 'array'
    : proto === Object.prototype
      ? 'object'
      : proto === null
        ? 'null-proto'
        : proto.constructor.name;
  return [kind, Reflect.ownKeys(v).map((k) => [String(k), shapeOf(v[k], depth + 1)])];
}

class Point {
  constructor(x) {
    this.x = x;
  }
}

const RESULTS = {
  plain: () => ({ a: [1, 'x', null, true, { b: -0 }], 'é😀': 1.5e300, 10: 'ten', 2: 'two' }),
  undefinedInside: () => ({ a: undefined, b: [undefined] }),
  hole: () => [1, , 3], // eslint-disable-line no-sparse-arrays
  nan: () => ({ n: NaN, i: -Infinity }),
  bigint: () => ({ n: 10n }),
  date: () => ({ at: new Date(0) }),
  instance: () => ({ p: new Point(1) }),
  nullProto: () => Object.assign(Object.create(null), { a: 1 }),
  toJSON: () => ({ toJSON: () => 'custom', a: 1 }),
  hiddenToJSON: () => Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'hidden' }),
  markerKeys: () => ({ __type: 'x', __graph: true, '$runner.escape::y': 1, __ref: 'obj_1' }),
  unsafeKeys: () => JSON.parse('{"__proto__":{"p":1},"constructor":1,"prototype":2,"a":3}'),
  boxed: () => ({ s: new String('boxed') }),
  symbolKey: () => ({ a: 1, [Symbol('k')]: 2 }),
  deep: () => {
    let v = 'leaf';
    for (let i = 0; i < 70; i++) v = { n: v };
    return v;
  },
  repeated: () => {
    const shared = { s: 1 };
    return { a: shared, b: [shared, shared] };
  },
  cycle: () => {
    const o = { a: 1 };
    o.self = o;
    return o;
  },
};

function rnItems(options = {}) {
  const tunnels = options.tunnels ?? 'full';
  const items = [];

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
    // What the task received, down to prototypes and key order, and a result of a kind the
    // Serializer writes specially or as JSON (the JSON fast path, lib/serializer-json.js).
    shape: t('rn.shape', async (input) => ({ shape: shapeOf(input), result: RESULTS[input?.make]?.() ?? input })),
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
    const main = tunnelResource(
      'rn.tunnel.main',
      async () => ({
        mode: 'server',
        transport: 'http',
        tasks: [
          tasks.add.id,
          tasks.echo.id,
          tasks.shape.id,
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
      }),
      { dependencies: { slow } },
    );
    const selector = tunnelResource('rn.tunnel.selector', () => ({
      // "both": served here AND the selected tasks are tunneled (their run is replaced)
      mode: 'both',
      tasks: (task) => task.id.startsWith('rn.sel.'),
      run: async (task, input) => ({ tunneled: task.id, input }),
    }));
    const noCtx = tunnelResource('rn.tunnel.noCtx', () => ({
      mode: 'server',
      transport: 'http',
      tasks: [tasks.whoamiNoCtx.id],
      allowAsyncContext: false,
    }));
    const otherTransport = tunnelResource('rn.tunnel.other', () => ({
      mode: 'server',
      transport: 'carrier-pigeon',
      tasks: [tasks.hidden.id],
    }));
    items.push(slow, main, selector, noCtx, otherTransport);
  } else if (tunnels === 'client') {
    items.push(
      tunnelResource('rn.tunnel.client', () => ({
        mode: 'client',
        transport: 'http',
        tasks: [tasks.add.id],
        run: async () => 'remote',
      })),
    );
  }
  return items;
}

/**
 * The rn.* app exposed by `exposure` (nodeExposure or nativeExposure) with `http` (listen is
 * filled in); `options` as rnItems'. Resolves startApp's handle.
 */
function startRnApp(exposure, http = {}, options = {}) {
  return startApp(exposure, { id: 'rn.app', http, items: rnItems(options) });
}

/** The rn.* app twice (`ref`: nodeExposure, `nat`: nativeExposure), same http config. */
function startRunnerPair(http = {}, options = {}) {
  return startBoth((exposure) => startRnApp(exposure, http, options));
}

module.exports = { rnItems, startRnApp, startRunnerPair, errors, userContext, tenantContext, TOKEN, API_KEY };
