'use strict';
// The nodeExposure peer under node:cluster: WORKERS (default 2) worker processes, each
// running the Runner app with nodeExposure, on one port handed out by the primary.
const cluster = require('node:cluster');
const { announce, exitWithParent, TOKEN } = require('../lib/common');

const WORKERS = Number(process.env.BENCH_CLUSTER_WORKERS) || 2;

if (cluster.isPrimary) {
  const workers = [];
  let listening = 0;
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork();
    workers.push(w);
    w.on('message', (m) => {
      if (m && m.port && ++listening === WORKERS) announce({ port: m.port, workers: WORKERS });
    });
  }
  exitWithParent(() => {
    for (const w of workers) w.process.kill();
  });
} else {
  const { nodeExposure } = require('@bluelibs/runner/node');
  const { start } = require('./runner-app');
  start(
    nodeExposure.with({
      // Port 0 in every worker: cluster gives them all the same port.
      http: { listen: { port: 0, host: '127.0.0.1' }, auth: { token: TOKEN } },
    }),
  ).then((runtime) => {
    process.send({ port: runtime.getResourceValue(nodeExposure).server.address().port });
  });
}
