'use strict';
// Opens N keep-alive connections to a server, makes one request on each, then keeps them
// open and idle, so the harness can read the server's RSS growth per idle connection.
// Usage: node idleconns.js '<json config>'  { port, path, bodyFile, count, concurrency, headers }
// stdout: {"ready":true,"open":n,"failed":f}   then answers "count\n" on stdin with {"open":n}.
// stdin end => close everything and exit.
const net = require('node:net');
const { postRequestBytes, answerSoFar } = require('./raw-post');
const { onLines } = require('./lines');

const cfg = JSON.parse(process.argv[2]);
const request = postRequestBytes(cfg);

const sockets = new Set();
let failed = 0;
let next = 0;

function one() {
  return new Promise((resolve) => {
    const s = net.connect({ port: cfg.port, host: '127.0.0.1' });
    let buf = null;
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (ok) sockets.add(s);
      else {
        failed++;
        s.destroy();
      }
      resolve();
    };
    s.on('connect', () => s.write(request));
    s.on('data', (d) => {
      if (done) return; // should not happen: idle
      buf = buf ? Buffer.concat([buf, d]) : d;
      const answer = answerSoFar(buf);
      if (answer && answer.complete) finish(/^HTTP\/1\.1 2\d\d/.test(answer.head));
    });
    s.on('error', () => finish(false));
    s.on('close', () => {
      sockets.delete(s);
      finish(false);
    });
  });
}

async function worker() {
  while (next < cfg.count) {
    next++;
    await one();
  }
}

(async () => {
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency || 50, cfg.count) }, worker));
  process.stdout.write(JSON.stringify({ ready: true, open: sockets.size, failed }) + '\n');
})();

onLines(process.stdin, (line) => {
  if (line.trim() === 'count') process.stdout.write(JSON.stringify({ open: sockets.size }) + '\n');
});
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
