'use strict';
// Open-loop, fixed-rate HTTP/1.1 load generator (the wrk2 idea, since wrk2 isn't packaged
// in Debian). Requests are *scheduled* at a constant rate; latency is measured from the
// scheduled send time, so a stalled server is charged for the requests queued behind it
// (no coordinated omission). Raw sockets + a pre-built request buffer keep the
// generator's own CPU cost small, which matters on a 2-core machine.
//
// Usage (child process): node openloop.js '<json config>'
//   { port, path, bodyFile, rate, warmupS, durationS, connections, headers }
// Prints one JSON line with the result.
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { postRequestBytes, answerSoFar } = require('./raw-post');

const cfg = JSON.parse(process.argv[2]);
const request = postRequestBytes(cfg);

const rate = cfg.rate; // requests per second
const warmupMs = (cfg.warmupS || 0) * 1000;
const measureMs = cfg.durationS * 1000;
const totalPlanned = Math.floor(((warmupMs + measureMs) / 1000) * rate);

const latencies = new Float64Array(Math.ceil((measureMs / 1000) * rate) + 16);
let nLat = 0;
// per status code (e.g. admitted 200s apart from shed 503s): latencies of the requests
// scheduled in the window, and how many finished (by wall clock) in it
const byStatusLat = new Map();
const byStatusFinished = new Map();
let completed = 0; // all phases
let completedInWindow = 0; // scheduled inside the measurement window (these have latencies)
let finishedInWindow = 0; // completed (by wall clock) inside the measurement window => throughput
let non2xx = 0;
let errors = 0;
let scheduled = 0; // requests whose send time has come
const queue = []; // intended send times (ms) not yet written
let start = 0;
let stopScheduling = false;

class Conn {
  constructor() {
    this.busy = false;
    this.intended = 0;
    this.buf = null;
    this.open();
  }
  open() {
    this.ready = false;
    this.sock = net.connect({ port: cfg.port, host: '127.0.0.1', noDelay: true });
    this.sock.on('connect', () => {
      this.ready = true;
      dispatch();
    });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      this.ready = false;
      if (this.busy) {
        this.busy = false;
        errors++;
      }
      this.buf = null;
      if (!finished) setTimeout(() => this.open(), 10);
    });
  }
  send(intended) {
    this.busy = true;
    this.intended = intended;
    this.buf = null;
    this.sock.write(request);
  }
  onData(d) {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const answer = answerSoFar(this.buf);
    if (!answer || !answer.complete) return;
    const { status } = answer;
    this.buf = null;
    this.busy = false;
    const now = performance.now();
    completed++;
    if (status < 200 || status > 299) non2xx++;
    if (now >= start + warmupMs && now < start + warmupMs + measureMs) {
      finishedInWindow++;
      byStatusFinished.set(status, (byStatusFinished.get(status) || 0) + 1);
    }
    if (this.intended >= start + warmupMs && this.intended < start + warmupMs + measureMs) {
      completedInWindow++;
      latencies[nLat++] = now - this.intended;
      if (!byStatusLat.has(status)) byStatusLat.set(status, []);
      byStatusLat.get(status).push(now - this.intended);
    }
    if (queue.length) this.send(queue.shift());
  }
}

let finished = false;
const conns = [];

function dispatch() {
  for (let i = 0; i < conns.length && queue.length; i++) {
    const c = conns[i];
    if (c.ready && !c.busy) c.send(queue.shift());
  }
}

function tick() {
  const now = performance.now();
  const due = Math.min(totalPlanned, Math.floor(((now - start) / 1000) * rate));
  while (scheduled < due) {
    queue.push(start + (scheduled * 1000) / rate);
    scheduled++;
  }
  dispatch();
  if (scheduled >= totalPlanned && !stopScheduling) {
    stopScheduling = true;
    clearInterval(timer);
    // give in-flight / queued requests up to 3 s to finish
    const deadline = performance.now() + 3000;
    const waiter = setInterval(() => {
      if (completed + errors >= totalPlanned || performance.now() > deadline) {
        clearInterval(waiter);
        finish();
      }
    }, 5);
  }
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function finish() {
  finished = true;
  const lat = Array.from(latencies.subarray(0, nLat)).sort((a, b) => a - b);
  const expectedInWindow = Math.floor((measureMs / 1000) * rate);
  const result = {
    rate,
    connections: conns.length,
    durationS: cfg.durationS,
    warmupS: cfg.warmupS || 0,
    planned: totalPlanned,
    completed,
    completedInWindow,
    expectedInWindow,
    unfinished: totalPlanned - completed - errors,
    non2xx,
    errors,
    // throughput actually delivered while the schedule ran; < rate means the server fell behind
    achievedRps: finishedInWindow / (measureMs / 1000),
    p50Ms: pct(lat, 50),
    p90Ms: pct(lat, 90),
    p99Ms: pct(lat, 99),
    p999Ms: pct(lat, 99.9),
    maxMs: lat.length ? lat[lat.length - 1] : NaN,
    byStatus: Object.fromEntries(
      [...byStatusLat].map(([status, l]) => {
        l.sort((a, b) => a - b);
        const finished = byStatusFinished.get(status) || 0;
        return [
          status,
          {
            count: l.length,
            rps: finished / (measureMs / 1000),
            p50Ms: pct(l, 50),
            p99Ms: pct(l, 99),
            maxMs: l[l.length - 1],
          },
        ];
      }),
    ),
    generatorCpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  for (const c of conns) c.sock.destroy();
  process.exit(0);
}

for (let i = 0; i < cfg.connections; i++) conns.push(new Conn());
let timer;
// start the clock once connections are up (or after 2 s regardless)
const startAt = performance.now();
const waitUp = setInterval(() => {
  if (conns.every((c) => c.ready) || performance.now() - startAt > 2000) {
    clearInterval(waitUp);
    start = performance.now();
    timer = setInterval(tick, 1);
  }
}, 5);
