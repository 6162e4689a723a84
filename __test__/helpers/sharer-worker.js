'use strict';
// A worker thread sharing a test server's listener (`share`), for the second run of the
// differential suites (RUNNER_NATIVE_TEST_SHARE=2, see servers.js): it loads the same
// handlers from their module, listens with the same options, says 'listening' (or what
// listen() rejected with), and closes on 'close', saying 'closed'.
const { parentPort, workerData } = require('node:worker_threads');
const { Serializer } = require('@bluelibs/runner');
const { TunnelServer } = require('../..');
const { registerHandlers, silentLogger } = require('./servers');

const { source, options, serializer } = workerData;
const server = registerHandlers(
  new TunnelServer({
    ...options,
    serializer: serializer === 'runner' ? new Serializer() : undefined,
    logger: silentLogger(),
  }),
  require(source.module)[source.name](),
);
server.listen().then(
  () => parentPort.postMessage('listening'),
  (e) => parentPort.postMessage({ error: `${e.code}: ${e.message}` }),
);
parentPort.once('message', async () => {
  await server.close();
  parentPort.postMessage('closed');
});
