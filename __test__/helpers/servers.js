'use strict';
// Starts the two servers under comparison with the same handlers:
//  - the reference: a real Runner app exposing tasks/events through `nodeExposure`
//  - the native `TunnelServer` from this package.
//
// handlers: {
//   tasks:  { [id]: async (input, ctx) => result },
//   events: { [id]: async (payload, ctx) => newPayload | undefined },
//   errors: [ r.error(...).build(), ... ]   // typed error helpers (the reference needs them registered)
// }
// options (shared): { basePath, auth, cors, limits, disableDiscovery,
//                     serializer: 'json' (default) | 'runner' (new Serializer()) | { parse, stringify } }
// reference-only:   { exposure: 'open' (default) | 'allowList' }
//   'open'      -> nodeExposure with dangerouslyAllowOpenExposure: true (unknown ids -> 404)
//   'allowList' -> a server-mode tunnel resource allow-listing exactly the registered ids
//                  (what discovery of a standalone server is compared against)
// native-only:      { native: { ...extra TunnelServer options } }

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Serializer, nodeExposure } = require('@bluelibs/runner');
const { startApp, handlerItems, tunnelResource, JSON_SERIALIZER } = require('./runner-app');

const silentLogger = () => {
  const entries = [];
  return {
    entries,
    error: (...args) => entries.push(['error', ...args]),
    warn: (...args) => entries.push(['warn', ...args]),
    info: (...args) => entries.push(['info', ...args]),
    debug: () => {},
  };
};

function defined(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out;
}

let refCounter = 0;

async function startReference(handlers = {}, options = {}) {
  const n = ++refCounter;
  const items = handlerItems(handlers);
  if (options.exposure === 'allowList') {
    items.push(
      tunnelResource(`test.reference.tunnel.${n}`, () => ({
        mode: 'server',
        transport: 'http',
        tasks: Object.keys(handlers.tasks ?? {}),
        events: Object.keys(handlers.events ?? {}),
      })),
    );
  }
  const http = defined({
    basePath: options.basePath,
    auth: options.auth,
    cors: options.cors,
    limits: options.limits,
    disableDiscovery: options.disableDiscovery,
    dangerouslyAllowOpenExposure: options.exposure === 'allowList' ? undefined : true,
  });
  const app = await startApp(nodeExposure, {
    id: `test.reference.app.${n}`,
    http,
    items,
    serializer: options.serializer ?? 'json',
  });
  return { ...app, kind: 'reference' };
}

function loadNative() {
  // eslint-disable-next-line global-require
  return require('../..');
}

/** Registers a handler set's tasks and events on a TunnelServer; returns it. */
function registerHandlers(server, handlers) {
  for (const [id, fn] of Object.entries(handlers.tasks ?? {})) server.registerTask(id, fn);
  for (const [id, fn] of Object.entries(handlers.events ?? {})) server.registerEvent(id, fn);
  return server;
}

async function startNative(handlers = {}, options = {}) {
  if (process.env.RUNNER_NATIVE_SELFTEST === '1') {
    // Harness self-check: compare the reference with itself.
    const { native = {}, ...rest } = options;
    const cors = native.corsOrigins ? { ...(rest.cors ?? {}), origin: native.corsOrigins } : rest.cors;
    const allow = await startReference(handlers, { ...rest, cors, exposure: 'allowList' });
    const open = await startReference(handlers, { ...rest, cors, exposure: 'open' });
    return {
      ...allow,
      open,
      async close() {
        await Promise.allSettled([allow.close(), open.close()]);
      },
    };
  }
  const { TunnelServer } = loadNative();
  const logger = silentLogger();
  const mode = options.serializer ?? 'json';
  const serverOptions = defined({
    port: 0,
    host: '127.0.0.1',
    basePath: options.basePath,
    auth: options.auth,
    cors: options.cors,
    limits: options.limits,
    disableDiscovery: options.disableDiscovery,
    serializer: mode === 'runner' ? new Serializer() : mode && typeof mode === 'object' ? mode : undefined,
    logger,
    // `npm test` runs some suites a second time on two HTTP workers (the
    // multi-threaded runtime, the default on machines with more cores).
    workerThreads: process.env.RUNNER_NATIVE_TEST_WORKERS ? Number(process.env.RUNNER_NATIVE_TEST_WORKERS) : undefined,
  });
  // native-only overrides; an explicit `undefined` removes a shared option
  for (const [k, v] of Object.entries(options.native ?? {})) {
    if (v === undefined) delete serverOptions[k];
    else serverOptions[k] = v;
  }
  // `npm test` runs the differential suites once more with RUNNER_NATIVE_TEST_SHARE=2: two
  // servers with the same handlers sharing one listener (`share`), calls spread over both;
  // the second in a worker thread when its handlers and options can be loaded there.
  const sharers = process.env.RUNNER_NATIVE_TEST_SHARE ? 2 : 1;
  if (sharers > 1) serverOptions.share = true;
  const start = async (port) => {
    const s = registerHandlers(new TunnelServer({ ...serverOptions, port }), handlers);
    return { s, addr: await s.listen() };
  };
  const { s: server, addr } = await start(serverOptions.port);
  const others = [];
  const workers = [];
  for (let i = 1; i < sharers; i++) {
    const worker = await startWorkerSharer(handlers, serverOptions, mode, addr.port);
    if (worker) workers.push(worker);
    else others.push((await start(addr.port)).s);
  }
  let closed = false;
  return {
    kind: 'native',
    server,
    logger,
    port: addr.port,
    host: addr.host,
    url: `http://127.0.0.1:${addr.port}`,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([server, ...others].map((s) => s.close()));
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}

/**
 * A sharer of `port` in a worker thread (helpers/sharer-worker.js) with the same handlers
 * and options, or null when they cannot be had there: handlers without a module to load
 * them from, a serializer other than JSON or Runner's, options that do not clone. Its
 * logger is a silent one of its own: a test that reads `logger.entries` sees only the
 * main thread's (those suites use handler sets defined in the test file, which stay in
 * the main thread).
 */
async function startWorkerSharer(handlers, serverOptions, mode, port) {
  const source = handlers[Symbol.for('runner-native.test.handlers-source')];
  if (!source || (mode !== 'json' && mode !== 'runner')) return null;
  const { serializer, logger, ...options } = serverOptions;
  let cloned;
  try {
    cloned = structuredClone({ ...options, port });
  } catch {
    return null;
  }
  const worker = new Worker(path.join(__dirname, 'sharer-worker.js'), {
    workerData: { source, options: cloned, serializer: mode },
  });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const said = () =>
    Promise.race([
      new Promise((resolve) => worker.once('message', resolve)),
      exited.then((code) => Promise.reject(new Error(`the sharing worker exited (${code})`))),
    ]);
  worker.on('error', () => {}); // an error ends it: `exited` tells
  const first = await said();
  if (first !== 'listening') {
    await worker.terminate();
    throw new Error(`the sharing worker did not listen: ${JSON.stringify(first)}`);
  }
  return {
    async close() {
      worker.postMessage('close');
      await said();
      await worker.terminate();
    },
  };
}

/**
 * Start both servers with the same handlers and options.
 *
 * Unless options.exposure is given, the reference side is two Runner apps:
 *  - `ref`: exposure through a server-mode tunnel resource allow-listing exactly the registered
 *    ids, which is what a standalone server's discovery document is compared against;
 *  - `refOpen`: `dangerouslyAllowOpenExposure: true`, used by `sameAnswer` only when `ref`
 *    answered 403 FORBIDDEN (an id outside the allow-list: a standalone server has no allow-list
 *    and answers such ids like the open reference, i.e. 404 `Task {id} not found`).
 */
async function startPair(handlers, options = {}) {
  const started = [];
  try {
    const ref = await startReference(handlers, { exposure: 'allowList', ...options });
    started.push(ref);
    let refOpen = null;
    if (options.exposure === undefined) {
      refOpen = await startReference(handlers, { ...options, exposure: 'open' });
      started.push(refOpen);
    }
    const nat = await startNative(handlers, options);
    started.push(nat);
    return {
      ref,
      refOpen,
      nat,
      async close() {
        await Promise.allSettled(started.map((s) => s.close()));
      },
    };
  } catch (e) {
    await Promise.allSettled(started.map((s) => s.close()));
    throw e;
  }
}

module.exports = {
  startReference,
  startNative,
  startPair,
  loadNative,
  registerHandlers,
  silentLogger,
  JSON_SERIALIZER,
};
