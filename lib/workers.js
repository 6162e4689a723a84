'use strict';

// `serveInWorkers`: the common case of `share: true` in one call. Starts worker threads,
// each loading the package and the user's handlers module into a TunnelServer of its own;
// the first binds, the others join its listener.

const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function fail(field, expected) {
  throw new TypeError(`serveInWorkers: option "${field}" must be ${expected}`);
}

// What each worker runs: its server, the handlers module applied to it, then listen.
const BOOT = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { TunnelServer } = require(workerData.pkg);
(async () => {
  const server = new TunnelServer({ ...workerData.options, share: true });
  const handlers = require(workerData.module);
  const setup = typeof handlers === 'function' ? handlers : handlers && handlers.default;
  if (typeof setup === 'function') {
    await setup(server);
  } else {
    for (const [id, fn] of Object.entries((handlers && handlers.tasks) || {})) server.registerTask(id, fn);
    for (const [id, fn] of Object.entries((handlers && handlers.events) || {})) server.registerEvent(id, fn);
  }
  const address = await server.listen();
  parentPort.postMessage({ listening: address });
  parentPort.once('message', async () => {
    await server.close();
    parentPort.postMessage({ closed: true });
  });
})().catch((e) => parentPort.postMessage({ failed: { message: e.message, code: e.code } }));
`;

/** Resolves with the worker's first message; rejects if it fails or exits first. */
function started(worker) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`serveInWorkers: a worker exited with code ${code} before listening`));
    worker.once('exit', onExit);
    worker.once('error', (e) => {
      worker.off('exit', onExit);
      reject(e);
    });
    worker.once('message', (m) => {
      worker.off('exit', onExit);
      if (m && m.listening) return resolve(m.listening);
      const err = new Error((m && m.failed && m.failed.message) || 'serveInWorkers: a worker failed to start');
      if (m && m.failed && m.failed.code) err.code = m.failed.code;
      reject(err);
    });
  });
}

/**
 * Starts `count` worker threads (default: one per core but one, at least one), each with a
 * TunnelServer of `options` and `share: true`, set up by `module` (a path: a module that
 * exports `(server) => ...`, or `{ tasks, events }` of handlers). Resolves, once all listen,
 * with `{ host, port, url, threadIds, workers, close() }`.
 */
async function serveInWorkers({ module: mod, count, options = {}, workerOptions = {} } = {}) {
  if (typeof mod !== 'string' || mod === '') fail('module', 'a path to a handlers module');
  if (count === undefined) count = Math.max(1, (os.availableParallelism?.() ?? os.cpus().length) - 1);
  if (!Number.isInteger(count) || count < 1 || count > 256) fail('count', 'an integer from 1 to 256');
  if (!isPlainObject(options)) fail('options', 'an object of TunnelServer options');
  const file = path.resolve(mod);
  const pkg = path.resolve(__dirname, '..');
  const workers = [];
  const spawn = (port) => {
    const w = new Worker(BOOT, {
      ...workerOptions,
      eval: true,
      workerData: { pkg, module: file, options: { ...options, port } },
    });
    workers.push(w);
    return started(w);
  };
  let first;
  try {
    // The first picks the port (when 0); the others join it.
    first = await spawn(options.port ?? 0);
    await Promise.all(Array.from({ length: count - 1 }, () => spawn(first.port)));
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  let closing = null;
  return {
    host: first.host,
    port: first.port,
    url: first.url,
    workers,
    threadIds: workers.map((w) => w.threadId),
    /** Closes every worker's server (each lets its calls finish) and waits for them to exit. */
    close() {
      closing ||= Promise.all(
        workers.map(
          (w) =>
            new Promise((resolve) => {
              if (w.threadId === -1) return resolve();
              w.once('exit', resolve);
              w.once('message', () => w.terminate());
              w.postMessage('close');
            }),
        ),
      ).then(() => undefined);
      return closing;
    },
  };
}

module.exports = { serveInWorkers };
