'use strict';
// The native server with its handlers in `count` isolates sharing one listener
// (`share: true`): the main thread and count - 1 worker threads, each registering the
// same handlers. Used by native-1isolate.js and native-2isolates.js.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { announce, exitWithParent, TOKEN } = require('../../lib/common');
const { loadTunnelServer, registerBench } = require('./package');

function sharer(port) {
  const TunnelServer = loadTunnelServer();
  return registerBench(new TunnelServer({ port, host: '127.0.0.1', share: true, auth: { token: TOKEN } }));
}

/** Runs the peer: the main thread binds, then the workers join its port. */
function serve(count) {
  loadTunnelServer();
  (async () => {
    const main = sharer(0);
    const { port } = await main.listen();
    const workers = [];
    for (let i = 1; i < count; i++) {
      const w = new Worker(__filename, { workerData: { port } });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      workers.push(w);
    }
    announce({ port, isolates: count });
    exitWithParent(() => {
      for (const w of workers) w.terminate();
      main.close().catch(() => {});
    });
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

if (!isMainThread) {
  const s = sharer(workerData.port);
  s.listen().then(() => parentPort.postMessage('listening'));
}

module.exports = { serve };
