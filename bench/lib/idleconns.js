'use strict';
// Opens N keep-alive connections to a server, makes one request on each, then keeps them
// open and idle, so the harness can read the server's RSS growth per idle connection.
// Usage: node idleconns.js '<json config>'  { port, path, bodyFile, count, concurrency, headers }
// stdout: {"ready":true,"open":n,"failed":f}   then answers "count\n" on stdin with {"open":n}.
// stdin end => close everything and exit.
const fs = require('node:fs');
const net = require('node:net');

const cfg = JSON.parse(process.argv[2]);
const body = fs.readFileSync(cfg.bodyFile);
const headerLines = Object.entries(cfg.headers || {})
  .map(([k, v]) => `${k}: ${v}\r\n`)
  .join('');
const request = Buffer.concat([
  Buffer.from(
    `POST ${cfg.path} HTTP/1.1\r\nhost: 127.0.0.1:${cfg.port}\r\n${headerLines}content-length: ${body.length}\r\n\r\n`,
  ),
  body,
]);
const HEADER_END = Buffer.from('\r\n\r\n');

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
      const he = buf.indexOf(HEADER_END);
      if (he === -1) return;
      const head = buf.toString('latin1', 0, he);
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const complete = m ? buf.length >= he + 4 + Number(m[1]) : buf.lastIndexOf('0\r\n\r\n') >= he + 4;
      if (complete) finish(/^HTTP\/1\.1 2\d\d/.test(head));
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

let input = '';
process.stdin.on('data', (d) => {
  input += d;
  let i;
  while ((i = input.indexOf('\n')) !== -1) {
    const cmd = input.slice(0, i).trim();
    input = input.slice(i + 1);
    if (cmd === 'count') process.stdout.write(JSON.stringify({ open: sockets.size }) + '\n');
  }
});
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
