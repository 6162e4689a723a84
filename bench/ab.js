'use strict';
// A/B of builds in one sitting: `node bench/ab.js label=checkout[,ENV=value...] ...` starts
// each checkout's bench/servers/native.js (its own built addon), then runs the tiny task
// (`add`) with wrk against each in turn, round after round, so the VM's drift falls on all
// of them alike. Prints per run and the medians: req/s and server CPU µs per request.
//   AB_ROUNDS (5), AB_DURATION (5 s), AB_CONNECTIONS (64), AB_WARMUP (1 s)
// e.g. node bench/ab.js main=/tmp/main this=. metrics=.,BENCH_NATIVE_METRICS=1
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SCENARIO_KINDS } = require('./lib/common');
const { ensureWrk, writeLuaScript, runWrk } = require('./lib/wrk');

const ROUNDS = Number(process.env.AB_ROUNDS || 5);
const DURATION = Number(process.env.AB_DURATION || 5);
const CONNECTIONS = Number(process.env.AB_CONNECTIONS || 64);
const WARMUP = Number(process.env.AB_WARMUP || 1);
const CLK_TCK = 100;

function parsePeer(arg) {
  const at = arg.indexOf('=');
  const label = at < 0 ? arg : arg.slice(0, at);
  const [dir, ...envs] = (at < 0 ? arg : arg.slice(at + 1)).split(',');
  const env = {};
  for (const e of envs) {
    const at = e.indexOf('=');
    env[e.slice(0, at)] = e.slice(at + 1);
  }
  return { label, dir: path.resolve(dir), env };
}

function startServer(peer) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(peer.dir, 'bench', 'servers', 'native.js')], {
      env: { ...process.env, ...peer.env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        const info = JSON.parse(line);
        if (info.skip) reject(new Error(`${peer.label}: ${info.skip}`));
        else resolve({ child, port: info.port, pid: info.pid });
      }
    });
    child.on('error', reject);
  });
}

/** utime + stime of a process, in clock ticks (all threads). */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

(async () => {
  const peers = process.argv.slice(2).map(parsePeer);
  if (peers.length < 2) throw new Error('usage: node bench/ab.js label=checkout[,ENV=value] label=checkout ...');
  const wrk = ensureWrk(console.error);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ab-'));
  const scenario = SCENARIO_KINDS.add;
  const bodyFile = path.join(dir, 'add.json');
  fs.writeFileSync(bodyFile, scenario.body());
  const script = writeLuaScript(dir, 'add', bodyFile);
  const servers = [];
  for (const peer of peers) servers.push({ peer, ...(await startServer(peer)), runs: [] });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with the next peer, so none always runs first.
      for (let k = 0; k < servers.length; k++) {
        const s = servers[(round + k) % servers.length];
        const url = `http://127.0.0.1:${s.port}${scenario.path}`;
        if (WARMUP > 0) await runWrk({ bin: wrk, url, script, connections: CONNECTIONS, durationS: WARMUP });
        const before = cpuTicks(s.pid);
        const r = await runWrk({ bin: wrk, url, script, connections: CONNECTIONS, durationS: DURATION });
        const cpuUs = ((cpuTicks(s.pid) - before) / CLK_TCK) * 1e6;
        if (r.non2xx || r.socketErrors)
          throw new Error(`${s.peer.label}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
        const run = { rps: r.rps, cpuUsPerReq: cpuUs / r.requests };
        s.runs.push(run);
        console.log(
          `round ${round + 1} ${s.peer.label.padEnd(10)} ${run.rps.toFixed(0).padStart(7)} req/s  ${run.cpuUsPerReq.toFixed(2)} µs CPU/req`,
        );
      }
    }
  } finally {
    for (const s of servers) s.child.kill();
  }
  console.log(`\nmedians over ${ROUNDS} rounds (wrk -t1 -c${CONNECTIONS} -d${DURATION}s, tiny task):`);
  for (const s of servers) {
    const rps = s.runs.map((r) => r.rps);
    console.log(
      `${s.peer.label.padEnd(10)} ${median(rps).toFixed(0).padStart(7)} req/s (${rps.map((x) => x.toFixed(0)).join(' ')})  ` +
        `${median(s.runs.map((r) => r.cpuUsPerReq)).toFixed(2)} µs CPU/req`,
    );
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
