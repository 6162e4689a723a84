'use strict';
// A/B of builds on the tiny task: `wrk -t1 -c64 -d5s` against bench/servers/native.js of each
// build in turn, rounds alternating (the order rotates each round), all servers up at once so
// each run sees the same machine. Reports req/s and server CPU µs per request per round, and
// the median ratio of each server to the first.
//
// node bench/ab.js '[{"label":"before","dir":"/tmp/ab/before"},
//                    {"label":"after","dir":"."},
//                    {"label":"after, maxInFlight","dir":".","options":{"maxInFlight":1024}}]'
// `dir`: a checkout (or a copy of index.js, lib/, native.js, the .node and bench/) with its
// addon built; `options`: more TunnelServer options (BENCH_NATIVE_OPTIONS, read by builds
// whose bench/servers/native.js knows it). AB_ROUNDS (6), AB_DURATION (5 s),
// AB_CONNECTIONS (64), AB_WARMUP (1 s).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ensureWrk, writeLuaScript, runWrk } = require('./lib/wrk');

const ROUNDS = Number(process.env.AB_ROUNDS || 6);
const DURATION = Number(process.env.AB_DURATION || 5);
const CONNECTIONS = Number(process.env.AB_CONNECTIONS || 64);
const WARMUP = Number(process.env.AB_WARMUP || 1);

function start({ dir, options }) {
  const child = spawn(process.execPath, [path.resolve(dir, 'bench', 'servers', 'native.js')], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_NATIVE_OPTIONS: JSON.stringify(options || {}) },
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.startsWith('{') && l.includes('"ready"'));
      if (line) resolve({ child, port: JSON.parse(line).port });
    });
    child.once('exit', (code) => reject(new Error(`${dir}: server exited ${code}`)));
  });
}

/** utime + stime of a process, in µs. */
function cpuMicros(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const servers = JSON.parse(process.argv[2] || '[]');
  if (servers.length < 2) throw new Error('usage: node bench/ab.js \'[{"label","dir","options"}, ...]\'');
  const bin = ensureWrk(console.error);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ab-'));
  const bodyFile = path.join(tmp, 'add.json');
  fs.writeFileSync(bodyFile, JSON.stringify({ input: { a: 1, b: 2 } }));
  const script = writeLuaScript(tmp, 'add', bodyFile);
  const live = [];
  for (const s of servers) live.push({ ...s, ...(await start(s)), runs: [] });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = live.map((_, i) => live[(i + round) % live.length]);
      for (const s of order) {
        const url = `http://127.0.0.1:${s.port}/__runner/task/bench.add`;
        if (WARMUP > 0) await runWrk({ bin, url, script, connections: CONNECTIONS, durationS: WARMUP });
        const cpu0 = cpuMicros(s.child.pid);
        const r = await runWrk({ bin, url, script, connections: CONNECTIONS, durationS: DURATION });
        const cpu = cpuMicros(s.child.pid) - cpu0;
        if (r.non2xx || r.socketErrors)
          throw new Error(`${s.label}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
        s.runs.push({ rps: r.rps, cpuUs: cpu / r.requests, p99Ms: r.p99Ms });
        console.error(
          `[round ${round + 1}] ${s.label}: ${Math.round(r.rps)} req/s, ${(cpu / r.requests).toFixed(1)} µs/req`,
        );
      }
    }
  } finally {
    for (const s of live) s.child.stdin.end();
  }
  const base = live[0];
  const lines = [
    `${new Date().toISOString()} · ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} · wrk -t1 -c${CONNECTIONS} -d${DURATION}s, tiny task, ${ROUNDS} rounds`,
    '',
    '| server | req/s per round | median | ratio to first (median of rounds) | server CPU µs/req (median) |',
    '| --- | --- | ---: | ---: | ---: |',
    ...live.map((s) => {
      const ratios = s.runs.map((r, i) => r.rps / base.runs[i].rps);
      return (
        `| ${s.label} | ${s.runs.map((r) => Math.round(r.rps)).join(' ')} | ${Math.round(median(s.runs.map((r) => r.rps)))} | ` +
        `${median(ratios).toFixed(3)} | ${median(s.runs.map((r) => r.cpuUs)).toFixed(1)} |`
      );
    }),
  ];
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
