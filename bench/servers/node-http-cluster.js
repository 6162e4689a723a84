'use strict';
// The node-http peer under node:cluster: WORKERS (default 2) worker processes on one port,
// connections handed out by the primary (cluster's default round-robin on Linux).
const cluster = require('node:cluster');
const http = require('node:http');
const { announce, exitWithParent } = require('../lib/common');

const WORKERS = Number(process.env.BENCH_CLUSTER_WORKERS) || 2;

if (cluster.isPrimary) {
  const workers = [];
  let port;
  let listening = 0;
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork();
    workers.push(w);
    w.on('listening', (address) => {
      port = address.port;
      if (++listening === WORKERS) announce({ port, workers: WORKERS });
    });
  }
  exitWithParent(() => {
    for (const w of workers) w.process.kill();
  });
} else {
  const { handle } = require('./node-http');
  // Port 0 in every worker: cluster gives them all the same port.
  http.createServer(handle).listen(0, '127.0.0.1');
}
