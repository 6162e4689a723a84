'use strict';
// Load shedding measured: a task whose capacity is known (each call holds one of POOL
// "connections" of a pretend database for HOLD_MS on a timer, so the server completes at most
// POOL / HOLD_MS calls a second however many are waiting), offered FACTOR times that capacity
// by the open-loop generator (bench/lib/openloop.js; latency from each request's scheduled
// time), against the server without a limit and with `maxInFlight`. Unlimited, every call is
// admitted and waits in the queue in JS, so latency grows with the run; with `maxInFlight`,
// admitted calls wait for at most the calls ahead of them and the rest get fast 503s.
//
// Run by hand after `npm run build`: node bench/shedding.js
// Knobs (environment): SHED_POOL (4), SHED_HOLD_MS (5), SHED_FACTOR (3), SHED_DURATION (5 s),
// SHED_CONNECTIONS (128), SHED_MAX_IN_FLIGHT (2 × pool), SHED_ROUNDS (2).
// Each configuration runs on a fresh server process, rounds interleaved.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { TOKEN, TOKEN_HEADER } = require('./lib/common');

const env = (name, fallback) => (process.env[name] === undefined ? fallback : Number(process.env[name]));
const POOL = env('SHED_POOL', 4);
const HOLD_MS = env('SHED_HOLD_MS', 5);
const FACTOR = env('SHED_FACTOR', 3);
const DURATION = env('SHED_DURATION', 5);
const CONNECTIONS = env('SHED_CONNECTIONS', 128);
const MAX_IN_FLIGHT = env('SHED_MAX_IN_FLIGHT', 2 * POOL);
const ROUNDS = env('SHED_ROUNDS', 2);
const PATH = '/__runner/task/bench.slow';

if (process.argv[2] === '--serve') serve(JSON.parse(process.argv[3]));
else
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });

/** The server (a child process): `bench.slow` holds one of `pool` places for `holdMs`. */
async function serve({ pool, holdMs, maxInFlight }) {
  const { TunnelServer } = require(path.resolve(__dirname, '..'));
  const waiting = [];
  let free = pool;
  const acquire = () => (free > 0 ? (free--, Promise.resolve()) : new Promise((r) => waiting.push(r)));
  const release = () => (waiting.length ? waiting.shift()() : free++);
  const server = new TunnelServer({ auth: { token: TOKEN }, ...(maxInFlight ? { maxInFlight } : {}) });
  server.registerTask('bench.slow', async () => {
    await acquire();
    await new Promise((r) => setTimeout(r, holdMs));
    release();
    return { done: true };
  });
  const { port } = await server.listen();
  process.stdout.write(JSON.stringify({ ready: true, port }) + '\n');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** Starts a server child; resolves with { port, stop }. */
function startServer(maxInFlight) {
  const child = spawn(
    process.execPath,
    [__filename, '--serve', JSON.stringify({ pool: POOL, holdMs: HOLD_MS, maxInFlight })],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const line = buf.split('\n')[0];
      if (buf.includes('\n')) {
        const { port } = JSON.parse(line);
        resolve({
          port,
          stop: () =>
            new Promise((r) => {
              child.once('exit', r);
              child.stdin.end();
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

/** One open-loop run; resolves with the generator's JSON result. */
function openLoop(port, rate, durationS) {
  const bodyFile = path.join(os.tmpdir(), `shed-body-${process.pid}.json`);
  fs.writeFileSync(bodyFile, '{"input":{}}');
  const config = {
    port,
    path: PATH,
    bodyFile,
    rate,
    warmupS: 1,
    durationS,
    connections: CONNECTIONS,
    headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
  };
  const child = spawn(process.execPath, [path.join(__dirname, 'lib', 'openloop.js'), JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`generator exited ${code}: ${out.slice(-300)}`));
      }
    }),
  );
}

/** What a run says about admitted calls and shed ones. */
function summarize(label, r) {
  const ok = r.byStatus['200'] || { count: 0 };
  const shed = r.byStatus['503'] || { count: 0 };
  const answered = Object.values(r.byStatus).reduce((n, s) => n + s.count, 0);
  return {
    label,
    offered: r.rate,
    admittedPerS: ok.rps ?? 0,
    shedPerS: shed.rps ?? 0,
    admittedP50: ok.p50Ms,
    admittedP99: ok.p99Ms,
    shedShare: answered ? shed.count / answered : 0,
    shedP50: shed.p50Ms,
    shedP99: shed.p99Ms,
    unanswered: r.expectedInWindow - answered,
    errors: r.errors,
  };
}

const ms = (v) => (v === undefined || Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(0));

async function main() {
  const nominal = (POOL * 1000) / HOLD_MS;
  console.error(`pool ${POOL} × ${HOLD_MS} ms: at most ${nominal} calls/s; calibrating...`);
  // The real capacity (timers fire a little late): what the limited server completes
  // under a 3x offer.
  let capacity;
  {
    const s = await startServer(MAX_IN_FLIGHT);
    const r = await openLoop(s.port, Math.round(3 * nominal), 3);
    await s.stop();
    capacity = Math.round(r.byStatus['200']?.rps ?? 0);
  }
  const rate = Math.round(FACTOR * capacity);
  console.error(`capacity ${capacity} calls/s; offering ${rate} req/s (${FACTOR}x) for ${DURATION} s per run`);
  const configs = [
    ['unlimited', undefined],
    [`maxInFlight ${MAX_IN_FLIGHT}`, MAX_IN_FLIGHT],
  ];
  const rows = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [label, maxInFlight] of round % 2 ? configs : [...configs].reverse()) {
      const s = await startServer(maxInFlight);
      const r = await openLoop(s.port, rate, DURATION);
      await s.stop();
      const row = { round, ...summarize(label, r) };
      rows.push(row);
      console.error(`[round ${round}] ${label}: ${JSON.stringify(row)}`);
    }
  }
  const lines = [
    `${new Date().toISOString()} · ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} · pool ${POOL} × ${HOLD_MS} ms (capacity ${capacity} calls/s measured) · offered ${rate} req/s over ${CONNECTIONS} connections, ${DURATION} s per run`,
    '',
    '| round | server | admitted calls/s | admitted p50 ms | admitted p99 ms | 503/s | 503 share | 503 p50 ms | 503 p99 ms | unanswered |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.round} | ${r.label} | ${Math.round(r.admittedPerS)} | ${ms(r.admittedP50)} | ${ms(r.admittedP99)} | ` +
        `${Math.round(r.shedPerS)} | ${(100 * r.shedShare).toFixed(1)}% | ${ms(r.shedP50)} | ${ms(r.shedP99)} | ${r.unanswered} |`,
    ),
  ];
  console.log(lines.join('\n'));
}
