'use strict';
// Shared helpers for the benchmark harness and its child processes.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { isDeepStrictEqual } = require('node:util');
const { onLines } = require('./lines');

const ROOT = path.resolve(__dirname, '..', '..');
const TOKEN = 'secret';
const TOKEN_HEADER = 'x-runner-token';
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

// ---------------------------------------------------------------- payloads

/** The 16 KB echo input: deterministic, realistic-looking nested JSON. The
 *  full request body `{"input":...}` is exactly 16384 bytes. */
function makeEchoInput(targetBodyBytes = 16 * 1024) {
  const items = [];
  const input = { kind: 'bench.echo', items, pad: '' };
  const size = () => Buffer.byteLength(JSON.stringify({ input }));
  for (let i = 0; size() < targetBodyBytes - 200; i++) {
    items.push({
      id: i,
      name: `item-${i}`,
      active: i % 3 === 0,
      price: Math.round(i * 137.31) / 100,
      tags: ['alpha', 'beta', `t${i % 7}`],
      meta: { created: 1700000000000 + i * 1000, owner: `user-${i % 13}` },
    });
  }
  input.pad = 'x'.repeat(Math.max(0, targetBodyBytes - size()));
  return input;
}

/** The CPU-bound input: `n` pseudo-random integers, the same every run. */
function makeCpuInput(n = 600) {
  let seed = 1;
  const values = [];
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    values.push(seed % 1000000);
  }
  return { values };
}

/** Real JS work on the input, ~100 µs on the bench VM: sorts a copy of the values and
 *  hashes them in order (FNV-1a). */
function cpuWork(input) {
  const v = input.values.slice();
  v.sort((a, b) => a - b);
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ (v[i] | 0), 16777619);
  return { checksum: h >>> 0, n: v.length };
}

const SCENARIO_KINDS = {
  add: {
    label: 'tiny task',
    path: '/__runner/task/bench.add',
    body: () => JSON.stringify({ input: { a: 1, b: 2 } }),
    check: (json) => json && json.ok === true && json.result && json.result.sum === 3,
  },
  echo16k: {
    label: '16 KB echo',
    path: '/__runner/task/bench.echo',
    body: () => JSON.stringify({ input: makeEchoInput() }),
    // semantic equality: key order may differ (serde_json without preserve_order sorts keys)
    check: (json, body) => json && json.ok === true && isDeepStrictEqual(json.result, JSON.parse(body).input),
  },
  event: {
    label: 'event',
    path: '/__runner/event/bench.ping',
    body: () => JSON.stringify({ payload: { n: 1 } }),
    check: (json) => json && json.ok === true,
  },
  // The CPU phase's (phases/cpu.js), not the throughput phase's.
  cpu: {
    label: 'CPU-bound task',
    path: '/__runner/task/bench.cpu',
    body: () => JSON.stringify({ input: makeCpuInput() }),
    check: (json, body) =>
      json && json.ok === true && json.result && json.result.checksum === cpuWork(JSON.parse(body).input).checksum,
  },
};

// ---------------------------------------------------------------- handlers
// The same business logic for every JS peer.
/** Reads a request body stream to its end; resolves the byte count. */
async function countBytes(stream) {
  let bytes = 0;
  for await (const chunk of stream) bytes += chunk.length;
  return bytes;
}

const handlers = {
  tasks: {
    'bench.add': async (input) => ({ sum: input.a + input.b }),
    'bench.echo': async (input) => input,
    'bench.cpu': async (input) => cpuWork(input),
  },
  events: {
    'bench.ping': async () => undefined,
  },
};

// ---------------------------------------------------------------- /proc

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {}

/** utime+stime of a whole process (all threads), in microseconds. */
function readCpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may contain spaces/parens: fields start after the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / clkTck;
}

/** utime+stime of a process and every process below it (a cluster's primary and its
 *  workers), in microseconds. */
function readTreeCpuMicros(pid) {
  let total = readCpuMicros(pid);
  let children = [];
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const list = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (list) children.push(...list.split(/\s+/).map(Number));
    }
  } catch {}
  for (const c of children) {
    try {
      total += readTreeCpuMicros(c);
    } catch {}
  }
  return total;
}

/** CPU of a process's waited-for children (cutime+cstime), in microseconds. The harness
 *  uses it on itself: wrk and the load generators are its children. */
function readChildrenCpuMicros(pid = process.pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1e6) / clkTck;
}

/** Resident set size of a process in KiB (VmRSS). */
function readRssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) : NaN;
}

/** Machine-wide CPU from /proc/stat (USER_HZ ticks = CLK_TCK). `procUs` is time charged
 *  to processes (user+nice+system); irq/softirq (loopback networking lands there) and
 *  steal (the hypervisor) are kept apart, since no process's utime/stime includes them. */
function readMachineCpu() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  const us = (t) => (t * 1e6) / clkTck;
  return {
    busy: total - idle - iowait,
    total,
    procUs: us(user + nice + system),
    irqUs: us(irq + softirq),
    stealUs: us(steal),
  };
}

// ---------------------------------------------------------------- ports

function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, timeoutMs = 20000, host = '127.0.0.1') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting connections after ${timeoutMs} ms`);
    await sleep(50);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `list` rotated by `round - 1`, so that no peer always runs first or last. */
const rotated = (list, round) => list.map((_, i) => list[(i + round - 1) % list.length]);

/** The median of the finite values (null when there are none). */
function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** `{ [key]: median of the runs' values of key }` for each of `keys`, in that order. */
const medians = (runs, keys) => Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))]));

// ---------------------------------------------------------------- server-child protocol

/** Called by bench/servers/*.js: tell the harness we are ready (one JSON line). */
function announce(info) {
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, ...info }) + '\n');
}

/** Called by bench/servers/*.js when the peer is unavailable: the harness skips it. */
function skip(reason) {
  process.stdout.write(JSON.stringify({ skip: reason }) + '\n');
  process.exit(0);
}

/** Exit when the harness goes away (stdin closes), so no server outlives it. Also
 *  answers the harness's "gc" command (used by the idle-memory phase, where servers run
 *  with --expose-gc) so RSS is read without the garbage of the warm-up requests. */
function exitWithParent(onExit) {
  const bye = () => {
    try {
      if (onExit) onExit();
    } catch {}
    process.exit(0);
  };
  onLines(process.stdin, (line) => {
    if (line.trim() === 'gc') {
      const collected = typeof global.gc === 'function';
      if (collected) {
        global.gc();
        global.gc();
      }
      process.stdout.write(JSON.stringify({ gc: collected }) + '\n');
    }
  });
  process.stdin.on('end', bye);
  process.stdin.on('error', bye);
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

module.exports = {
  countBytes,
  ROOT,
  TOKEN,
  TOKEN_HEADER,
  JSON_CONTENT_TYPE,
  SCENARIO_KINDS,
  makeEchoInput,
  handlers,
  readCpuMicros,
  readTreeCpuMicros,
  readChildrenCpuMicros,
  makeCpuInput,
  cpuWork,
  readRssKb,
  readMachineCpu,
  clkTck,
  freePort,
  waitForPort,
  sleep,
  rotated,
  median,
  medians,
  announce,
  skip,
  exitWithParent,
};
