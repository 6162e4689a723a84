'use strict';
// A worker thread sharing a test server's listener (`share`), for the second run of the
// differential suites (RUNNER_NATIVE_TEST_SHARE=2, see servers.js): it loads the same
// handlers from their module, listens with the same options, says 'listening' (or what
// listen() rejected with), and closes on 'close', saying 'closed'.
const { parentPort, workerData } = require('node:worker_threads');
const { Serializer } = require('@bluelibs/runner');
const { TunnelServer } = require('../..');

const { source, options, serializer } = workerData;
const handlers = require(source.module)[source.name]();
const server = new TunnelServer({
  ...options,
  serializer: serializer === 'runner' ? new Serializer() : undefined,
  logger: { error() {}, warn() {}, info() {}, debug() {} },
});
for (const [id, fn] of Object.entries(handlers.tasks ?? {})) server.registerTask(id, fn);
for (const [id, fn] of Object.entries(handlers.events ?? {})) server.registerEvent(id, fn);
server.listen().then(
  () => parentPort.postMessage('listening'),
  (e) => parentPort.postMessage({ error: `${e.code}: ${e.message}` }),
);
parentPort.once('message', async () => {
  await server.close();
  parentPort.postMessage('closed');
});
