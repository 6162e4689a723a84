#!/usr/bin/env node
'use strict';
// Benchmark harness for @bluelibs/runner-native.  `npm run bench`
//
// Every peer runs in its own child process (bench/servers/<name>.js), so its CPU time is
// read from /proc/<pid>/stat around each measured run. Load comes from wrk (1 thread,
// --latency), rounds are interleaved (round → scenario → server) and the median across
// rounds is reported. See bench/README.md for the knobs.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, spawnSync } = require('node:child_process');

const {
  ROOT,
  TOKEN,
  TOKEN_HEADER,
  SCENARIO_KINDS,
  readCpuMicros,
  readChildrenCpuMicros,
  readRssKb,
  readMachineCpu,
  sleep,
} = require('./lib/common');
const { ensureWrk, wrkVersion, writeLuaScript, runWrk } = require('./lib/wrk');
const { barChart } = require('./lib/svg');
const { tlsPhase, renderTls } = require('./lib/tls');

const log = (...a) => console.error(...a);

// ------------------------------------------------------------------ configuration

const ALL_SERVERS = ['native', 'nativeExposure', 'nodeExposure', 'node-http', 'fastify', 'brahma', 'rust'];
const BASELINES = ['node-http', 'nodeExposure', 'rust'];
const BACKGROUND_WARN = 0.15; // cores of unrelated CPU use during a run worth warning about
// A throughput run during which the hypervisor took (stole) more than this
// many cores from the VM is measured again, up to STEAL_RETRIES times.
const STEAL_REDO = 0.05;
const STEAL_RETRIES = 2;
const KINDS = ['add', 'echo16k', 'event'];

const env = process.env;
const SMOKE = env.BENCH_SMOKE === '1' || env.BENCH_SMOKE === 'true';
const list = (v) =>
  v
    ? String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
const num = (v, d) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? d : Number(v));

const cfg = {
  smoke: SMOKE,
  rounds: Math.max(1, Math.round(num(env.BENCH_ROUNDS, SMOKE ? 1 : 3))),
  durationS: Math.max(1, Math.round(num(env.BENCH_DURATION, SMOKE ? 1 : 5))),
  warmupS: Math.max(0, Math.round(num(env.BENCH_WARMUP, 1))),
  connections: (list(env.BENCH_CONNECTIONS) || ['64', '256']).map(Number),
  servers: list(env.BENCH_SERVERS) || (SMOKE ? ['native', 'node-http'] : ALL_SERVERS),
  scenarioFilter: list(env.BENCH_SCENARIOS) || (SMOKE ? ['add@64'] : null),
  fixedRate: env.BENCH_FIXED === '0' ? 0 : num(env.BENCH_FIXED_RATE, 'auto'),
  fixedConnections: Math.round(num(env.BENCH_FIXED_CONNECTIONS, 64)),
  idleConns: Math.round(num(env.BENCH_IDLE_CONNS, SMOKE ? 200 : 2000)),
  upload: env.BENCH_UPLOAD === '0' ? false : !SMOKE,
  wrkThreads: Math.max(1, Math.round(num(env.BENCH_WRK_THREADS, 1))),
  out: env.BENCH_OUT ? path.resolve(env.BENCH_OUT) : path.join(__dirname, 'results', SMOKE ? 'smoke' : 'latest'),
};
// In smoke mode the default pair is native + node-http; while the addon isn't built,
// nodeExposure stands in for native (see startServers).
const SMOKE_STAND_IN = SMOKE && !env.BENCH_SERVERS ? { native: 'nodeExposure' } : {};

for (const s of cfg.servers) {
  if (!ALL_SERVERS.includes(s)) {
    log(`unknown server "${s}" in BENCH_SERVERS (known: ${ALL_SERVERS.join(', ')})`);
    process.exit(2);
  }
}

const scenarios = [];
for (const kind of KINDS) {
  for (const c of cfg.connections) {
    const name = `${kind}@${c}`;
    if (cfg.scenarioFilter && !cfg.scenarioFilter.some((f) => f === name || f === kind)) continue;
    scenarios.push({ name, kind, connections: c, ...SCENARIO_KINDS[kind] });
  }
}
if (!scenarios.length) {
  log(`BENCH_SCENARIOS matched nothing (use e.g. add, echo16k, event, add@64)`);
  process.exit(2);
}

// ------------------------------------------------------------------ server processes

const allProcs = new Set();
let startCount = 0;

class ServerProc {
  constructor(name) {
    allProcs.add(this);
    this.name = name;
    this.file = path.join(__dirname, 'servers', `${name}.js`);
    this.state = 'new';
    this.tail = '';
  }

  start({ timeoutMs = 30000, exposeGc = false } = {}) {
    return new Promise((resolve) => {
      // stderr goes to a file, not a pipe: Node makes its child pipes non-blocking, and a
      // native server that eprintln!s under load (brahma does, once per dropped connection)
      // panics with EAGAIN and aborts. A file never blocks.
      this.errLog = path.join(tmpDir, `${this.name}-${++startCount}.stderr.log`);
      const errFd = fs.openSync(this.errLog, 'w');
      const child = spawn(process.execPath, [...(exposeGc ? ['--expose-gc'] : []), this.file], {
        stdio: ['pipe', 'pipe', errFd],
        env: { ...process.env, NODE_ENV: 'production' },
        cwd: ROOT,
      });
      fs.closeSync(errFd);
      this.child = child;
      let buf = '';
      let settled = false;
      const settle = (state, extra = {}) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        Object.assign(this, extra);
        this.state = state;
        resolve(this);
      };
      const keep = (d) => {
        this.tail = (this.tail + d).slice(-4000);
        if (env.BENCH_VERBOSE) process.stderr.write(`[${this.name}] ${d}`);
      };
      child.stdout.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          let msg = null;
          if (line.startsWith('{')) {
            try {
              msg = JSON.parse(line);
            } catch {}
          }
          if (msg && 'gc' in msg && this.onGc) this.onGc(msg);
          else if (msg && msg.skip) settle('skipped', { reason: msg.skip });
          else if (msg && msg.ready && msg.port)
            settle('ready', { port: msg.port, pid: msg.pid || child.pid, workers: msg.workers });
          else keep(line + '\n');
        }
      });
      child.stdin.on('error', () => {});
      child.on('exit', (code, signal) => {
        this.exited = true;
        this.tail = (this.tail + this.stderrTail()).slice(-4000);
        if (this.state === 'ready' && !this.stopping) {
          this.state = 'crashed';
          this.reason = `exited during the run (code ${code}, signal ${signal}): ${this.tail.trim().slice(-600)}`;
          log(`!! ${this.name} ${this.reason}`);
        }
        settle('failed', {
          reason: `exited before ready (code ${code}, signal ${signal}): ${this.tail.trim().slice(-600)}`,
        });
      });
      const timer = setTimeout(() => {
        settle('failed', { reason: `not ready after ${timeoutMs} ms: ${this.tail.trim().slice(-600)}` });
        this.stop();
      }, timeoutMs);
    });
  }

  /** Last lines of the server's stderr log, minus the per-dropped-connection noise. */
  stderrTail() {
    try {
      const text = fs.readFileSync(this.errLog, 'utf8');
      const lines = text.split('\n').filter((l) => l && !/^Error serving connection: hyper::Error/.test(l));
      return lines.slice(-30).join('\n');
    } catch {
      return '';
    }
  }

  /** Ask the server to run a full GC (needs exposeGc); resolves after its reply or 2 s. */
  gc() {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.onGc = null;
        resolve(false);
      }, 2000);
      this.onGc = (msg) => {
        clearTimeout(t);
        this.onGc = null;
        resolve(!!msg.gc);
      };
      try {
        this.child.stdin.write('gc\n');
      } catch {
        clearTimeout(t);
        resolve(false);
      }
    });
  }

  get alive() {
    return this.state === 'ready' && !this.exited;
  }

  async stop() {
    if (!this.child || this.exited) return;
    this.stopping = true;
    const pid = this.pid;
    try {
      this.child.stdin.end();
    } catch {}
    const deadline = Date.now() + 3000;
    while (!this.exited && Date.now() < deadline) await sleep(50);
    if (!this.exited) {
      try {
        this.child.kill('SIGKILL');
      } catch {}
      while (!this.exited) await sleep(20);
    }
    // a wrapper (rust.js) reports its grandchild's pid: make sure it is gone too
    if (pid && pid !== this.child.pid) {
      try {
        process.kill(pid, 0);
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

async function startServers(names) {
  const procs = [];
  for (const name of names) {
    const p = await new ServerProc(name).start();
    if (p.state === 'ready')
      log(
        `   ${name.padEnd(15)} ready on :${p.port} (pid ${p.pid}${p.workers ? `, ${p.workers} HTTP worker(s)` : ''})${env.BENCH_VERBOSE ? '  stderr: ' + p.errLog : ''}`,
      );
    else log(`   ${name.padEnd(15)} ${p.state.toUpperCase()}: ${p.reason}`);
    if (p.state !== 'ready' && SMOKE_STAND_IN[name] && !names.includes(SMOKE_STAND_IN[name])) {
      const alt = SMOKE_STAND_IN[name];
      log(`   (smoke) ${name} unavailable, using ${alt} instead`);
      procs.push(p);
      const q = await new ServerProc(alt).start();
      if (q.state === 'ready') log(`   ${alt.padEnd(15)} ready on :${q.port} (pid ${q.pid})`);
      else log(`   ${alt.padEnd(15)} ${q.state.toUpperCase()}: ${q.reason}`);
      procs.push(q);
      continue;
    }
    procs.push(p);
  }
  return procs;
}

// ------------------------------------------------------------------ helpers

function post(port, urlPath, body, withToken = true, contentType = 'application/json') {
  return new Promise((resolve) => {
    const headers = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
    if (withToken) headers[TOKEN_HEADER] = TOKEN;
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, text, json, headers: res.headers });
        });
      },
    );
    req.on('error', (e) => resolve({ status: 0, text: String(e.message), json: null }));
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/** One real request per scenario kind; plus one without the token (must be refused). */
async function checkServer(p) {
  const problems = [];
  for (const kind of new Set(scenarios.map((s) => s.kind))) {
    const k = SCENARIO_KINDS[kind];
    const body = bodies[kind];
    const r = await post(p.port, k.path, body);
    if (r.status < 200 || r.status > 299 || !k.check(r.json, body)) {
      problems.push(`${kind}: HTTP ${r.status} ${r.text.slice(0, 160)}`);
    }
  }
  const unauth = await post(p.port, SCENARIO_KINDS.add.path, bodies.add, false);
  const authEnforced = unauth.status === 401 || unauth.status === 403;
  return { ok: problems.length === 0, problems, authEnforced };
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function runChild(file, config, { onStdoutLine } = {}) {
  const child = spawn(process.execPath, [path.join(__dirname, 'lib', file), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
  child.stdin.on('error', () => {});
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (onStdoutLine) onStdoutLine(line);
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, err })));
  return { child, exited };
}

const fmt = {
  int: (v) => (v == null ? '-' : Math.round(v).toLocaleString('en-US')),
  ms: (v) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)),
  x: (v) => (v == null ? '-' : v.toFixed(2) + '×'),
  us: (v) => (v == null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
};

function table(headers, rows, align) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells.map((c, i) => (align[i] === 'l' ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function mdTable(headers, rows, align) {
  const sep = align.map((a) => (a === 'l' ? ':---' : '---:'));
  return [headers, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function machineInfo() {
  const tryRun = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? (r.stdout || '').trim() : null;
  };
  let pkgVersion = null;
  try {
    pkgVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  } catch {}
  const runnerVersion = (() => {
    try {
      return require('@bluelibs/runner/package.json').version;
    } catch {
      return null;
    }
  })();
  return {
    cpuModel: os.cpus()[0] && os.cpus()[0].model,
    cpus: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    rustc: tryRun('rustc', ['--version']),
    wrk: wrkVersion(wrkBin),
    packageVersion: pkgVersion,
    runnerVersion,
    gitCommit: tryRun('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
  };
}

// ------------------------------------------------------------------ main

let tmpDir;
let wrkBin;
let loadAtStart;
const bodies = {};
const bodyFiles = {};
let procs = [];

async function main() {
  const t0 = Date.now();
  loadAtStart = os.loadavg().map((x) => +x.toFixed(2));
  if (loadAtStart[0] > 0.5) {
    log(`note: load average is ${loadAtStart.join(' ')} before starting; other work on this machine skews the numbers`);
  }
  wrkBin = ensureWrk(log);
  if (!wrkBin) {
    log('wrk is required: apt-get install -y wrk   (then re-run `npm run bench`)');
    process.exit(1);
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-bench-'));
  for (const kind of KINDS) {
    bodies[kind] = SCENARIO_KINDS[kind].body();
    bodyFiles[kind] = path.join(tmpDir, `${kind}.json`);
    fs.writeFileSync(bodyFiles[kind], bodies[kind]);
  }
  const scripts = {};
  for (const kind of KINDS) scripts[kind] = writeLuaScript(tmpDir, kind, bodyFiles[kind]);

  log(
    `runner-native bench${SMOKE ? ' (SMOKE)' : ''}: ${cfg.rounds} round(s) × ${cfg.durationS}s (+${cfg.warmupS}s warm-up), ` +
      `wrk -t${cfg.wrkThreads}, scenarios ${scenarios.map((s) => s.name).join(' ')}`,
  );
  log('starting servers:');
  procs = await startServers(cfg.servers);
  const skipped = procs
    .filter((p) => p.state !== 'ready')
    .map((p) => ({ server: p.name, state: p.state, reason: p.reason }));
  let live = procs.filter((p) => p.state === 'ready');

  const checks = {};
  for (const p of live) {
    const c = await checkServer(p);
    checks[p.name] = c;
    if (!c.ok) {
      log(`!! ${p.name} failed the correctness check: ${c.problems.join('; ')} — its results are marked invalid`);
    }
    if (!c.authEnforced) log(`!! ${p.name} accepted a request without the token (auth not enforced)`);
  }
  if (!live.length) {
    log('no server could be started; nothing to measure.');
    await cleanup();
    process.exit(1);
  }
  const names = live.map((p) => p.name);

  // ---------------------------------------------------------------- throughput rounds
  const runs = {}; // runs[scenario][server] = [round results]
  let stealRedone = 0; // throughput runs measured again after the hypervisor took CPU
  for (const s of scenarios) runs[s.name] = Object.fromEntries(names.map((n) => [n, []]));

  for (let round = 1; round <= cfg.rounds; round++) {
    for (const s of scenarios) {
      // rotate the server order each round so no peer always runs first/last
      const order = live.map((_, i) => live[(i + round - 1) % live.length]);
      for (const p of order) {
        const tag = `[round ${round}/${cfg.rounds}] ${s.name.padEnd(11)} ${p.name.padEnd(15)}`;
        if (!p.alive) {
          runs[s.name][p.name].push({ round, valid: false, error: 'server not running' });
          log(`${tag} skipped: server not running`);
          continue;
        }
        const url = `http://127.0.0.1:${p.port}${s.path}`;
        for (let attempt = 1; ; attempt++) {
          try {
            if (cfg.warmupS > 0) {
              await runWrk({
                bin: wrkBin,
                url,
                script: scripts[s.kind],
                connections: s.connections,
                durationS: cfg.warmupS,
                threads: cfg.wrkThreads,
              });
            }
            const cpu0 = readCpuMicros(p.pid);
            const m0 = readMachineCpu();
            const kids0 = readChildrenCpuMicros();
            const self0 = process.cpuUsage();
            const r = await runWrk({
              bin: wrkBin,
              url,
              script: scripts[s.kind],
              connections: s.connections,
              durationS: cfg.durationS,
              threads: cfg.wrkThreads,
            });
            const cpu1 = p.alive ? readCpuMicros(p.pid) : NaN;
            const m1 = readMachineCpu();
            const wrkUs = readChildrenCpuMicros() - kids0;
            const selfD = process.cpuUsage(self0);
            // whatever else ran on the machine meanwhile (other builds, tests...), in cores
            const background =
              (m1.procUs - m0.procUs - (cpu1 - cpu0) - wrkUs - selfD.user - selfD.system) / 1e6 / r.seconds;
            const reasons = [];
            if (r.non2xx > 0) reasons.push(`${r.non2xx} non-2xx`);
            if (r.socketErrors > 0) reasons.push(`socket errors ${JSON.stringify(r.errors)}`);
            if (r.requests === 0) reasons.push('no requests completed');
            if (!checks[p.name].ok) reasons.push('failed correctness check');
            if (!p.alive) reasons.push('server died');
            const res = {
              round,
              valid: reasons.length === 0,
              invalidReasons: reasons,
              rps: r.rps,
              requests: r.requests,
              seconds: r.seconds,
              p50Ms: r.p50Ms,
              p90Ms: r.p90Ms,
              p99Ms: r.p99Ms,
              p999Ms: r.p999Ms,
              maxMs: r.maxMs,
              non2xx: r.non2xx,
              socketErrors: r.errors,
              serverCpuUsPerReq: r.requests > 0 ? (cpu1 - cpu0) / r.requests : null,
              serverCpuCores: (cpu1 - cpu0) / 1e6 / r.seconds,
              machineBusyPct: (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total),
              wrkCpuCores: wrkUs / 1e6 / r.seconds,
              backgroundCpuCores: background,
              softirqCpuCores: (m1.irqUs - m0.irqUs) / 1e6 / r.seconds,
              stealCpuCores: (m1.stealUs - m0.stealUs) / 1e6 / r.seconds,
              attempt,
            };
            if (res.stealCpuCores > STEAL_REDO && attempt <= STEAL_RETRIES) {
              // The hypervisor took CPU from this VM meanwhile: that says more
              // about the host than about the server, so measure again.
              stealRedone += 1;
              log(
                `${tag} ${fmt.int(res.rps).padStart(8)} req/s  (hypervisor took ${res.stealCpuCores.toFixed(2)} cores: measuring again)`,
              );
              await sleep(1000);
              continue;
            }
            runs[s.name][p.name].push(res);
            log(
              `${tag} ${fmt.int(res.rps).padStart(8)} req/s  p50 ${fmt.ms(res.p50Ms)}ms  p99 ${fmt.ms(res.p99Ms)}ms  ` +
                `server ${fmt.us(res.serverCpuUsPerReq)}µs/req` +
                (background > BACKGROUND_WARN ? `  (background load ${background.toFixed(2)} cores!)` : '') +
                (res.valid ? '' : '  INVALID: ' + reasons.join(', ')),
            );
          } catch (e) {
            runs[s.name][p.name].push({ round, valid: false, error: String(e.message || e) });
            log(`${tag} ERROR ${e.message}`);
          }
          break;
        }
        await sleep(200);
      }
    }
  }

  // medians
  const summary = {};
  for (const s of scenarios) {
    summary[s.name] = {};
    for (const n of names) {
      const rs = runs[s.name][n];
      const measured = rs.filter((r) => Number.isFinite(r.rps));
      summary[s.name][n] = measured.length
        ? {
            rps: median(measured.map((r) => r.rps)),
            p50Ms: median(measured.map((r) => r.p50Ms)),
            p99Ms: median(measured.map((r) => r.p99Ms)),
            serverCpuUsPerReq: median(measured.map((r) => r.serverCpuUsPerReq)),
            serverCpuCores: median(measured.map((r) => r.serverCpuCores)),
            rounds: measured.length,
            valid: rs.length > 0 && rs.every((r) => r.valid),
          }
        : { rps: null, valid: false, rounds: 0 };
    }
  }
  for (const s of scenarios) {
    for (const n of names) {
      const cur = summary[s.name][n];
      cur.ratio = {};
      for (const b of BASELINES) {
        const base = summary[s.name][b];
        cur.ratio[b] = base && base.rps && cur.rps ? cur.rps / base.rps : null;
      }
    }
  }

  // ---------------------------------------------------------------- fixed-rate latency
  let fixed = null;
  if (cfg.fixedRate !== 0) {
    fixed = await fixedRatePhase(live, summary);
  }

  // ---------------------------------------------------------------- upload throughput
  let upload = null;
  if (cfg.upload) {
    upload = await uploadPhase(live);
  }

  // ---------------------------------------------------------------- HTTPS (BENCH_TLS=0 skips it)
  const tls =
    SMOKE || env.BENCH_TLS === '0'
      ? null
      : await tlsPhase({ start: (name) => new ServerProc(name).start(), wrkBin, scripts, bodies, cfg, log });

  // ---------------------------------------------------------------- idle keep-alive memory
  let idleMemory = null;
  if (cfg.idleConns > 0) {
    // stop the throughput instances first: memory is measured on fresh ones, one at a time
    for (const p of procs) await p.stop();
    idleMemory = await idleMemoryPhase(names);
  }

  await cleanup();

  // ---------------------------------------------------------------- report
  const result = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: {
      smoke: cfg.smoke,
      rounds: cfg.rounds,
      durationS: cfg.durationS,
      warmupS: cfg.warmupS,
      wrk: { threads: cfg.wrkThreads, latency: true, timeoutS: 10 },
      scenarios: scenarios.map((s) => ({
        name: s.name,
        kind: s.kind,
        label: s.label,
        path: s.path,
        connections: s.connections,
        bodyBytes: Buffer.byteLength(bodies[s.kind]),
      })),
      servers: cfg.servers,
      httpWorkers: Object.fromEntries(live.filter((p) => p.workers).map((p) => [p.name, p.workers])),
      fixedRate: fixed && { rate: fixed.rate, source: fixed.source, connections: cfg.fixedConnections },
      idleConnections: cfg.idleConns,
      statistic: 'median across rounds; server CPU = Δ(utime+stime) of the server process / requests',
    },
    skipped,
    checks,
    summary,
    fixedRate: fixed,
    upload,
    tls,
    idleMemory,
    runs,
    elapsedS: Math.round((Date.now() - t0) / 1000),
  };

  const allRuns = Object.values(runs).flatMap((byServer) => Object.values(byServer).flat());
  const noisy = allRuns.filter((r) => r.backgroundCpuCores > BACKGROUND_WARN);
  result.noisyRuns = noisy.length;
  result.stealRemeasured = stealRedone;
  result.loadAverageAtStart = loadAtStart;
  const text = renderText(result, names);
  console.log(text.plain);

  fs.mkdirSync(path.dirname(cfg.out), { recursive: true });
  fs.writeFileSync(`${cfg.out}.json`, JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(`${cfg.out}.md`, text.markdown + '\n');
  fs.writeFileSync(`${cfg.out}.svg`, renderSvg(result, names));
  log(`\nwrote ${path.relative(process.cwd(), cfg.out)}.{json,md,svg}  (${result.elapsedS}s)`);

  const anyInvalid = scenarios.some((s) => names.some((n) => !summary[s.name][n].valid));
  const crashed = procs.filter((p) => p.state === 'crashed' || p.state === 'failed');
  if (SMOKE && (anyInvalid || crashed.length || live.length < 2)) {
    log(
      'smoke run FAILED: ' +
        (anyInvalid ? 'invalid results ' : '') +
        crashed.map((p) => `${p.name} ${p.state}`).join(', ') +
        (live.length < 2 ? ` only ${live.length} server(s) ran` : ''),
    );
    process.exit(1);
  }
}

// ------------------------------------------------------------------ upload phase

/** Peers whose task reads the raw request stream (`bench.upload`). */
const UPLOAD_SERVERS = ['native', 'nativeExposure', 'nodeExposure', 'node-http', 'rust'];
const UPLOAD_BYTES = 1024 * 1024;
const UPLOAD_CONNECTIONS = 16;

/**
 * 1 MiB `application/octet-stream` bodies to a task that streams them and
 * counts the bytes; MB/s = completed uploads × 1 MiB / s. Rounds interleaved.
 */
async function uploadPhase(live) {
  const peers = live.filter((p) => UPLOAD_SERVERS.includes(p.name));
  if (!peers.length) return { skipped: 'no upload-capable server running' };
  const file = path.join(tmpDir, 'upload.bin');
  fs.writeFileSync(file, Buffer.alloc(UPLOAD_BYTES, 0x61));
  const script = writeLuaScript(tmpDir, 'upload', file, 'application/octet-stream');
  log(`\nupload throughput: ${UPLOAD_BYTES} byte bodies, ${UPLOAD_CONNECTIONS} connections`);
  const runsByServer = Object.fromEntries(peers.map((p) => [p.name, []]));
  for (let round = 1; round <= cfg.rounds; round++) {
    const order = peers.map((_, i) => peers[(i + round - 1) % peers.length]);
    for (const p of order) {
      if (!p.alive) continue;
      const url = `http://127.0.0.1:${p.port}/__runner/task/bench.upload`;
      const check = await post(
        p.port,
        '/__runner/task/bench.upload',
        Buffer.alloc(1000, 0x61),
        true,
        'application/octet-stream',
      );
      const checked =
        check && check.json && check.json.ok === true && check.json.result && check.json.result.bytes === 1000;
      try {
        const cpu0 = readCpuMicros(p.pid);
        const r = await runWrk({
          bin: wrkBin,
          url,
          script,
          connections: UPLOAD_CONNECTIONS,
          durationS: cfg.durationS,
          threads: cfg.wrkThreads,
        });
        const cpu1 = p.alive ? readCpuMicros(p.pid) : NaN;
        const mbps = (r.requests * UPLOAD_BYTES) / r.seconds / 1e6;
        const valid = r.non2xx === 0 && r.socketErrors === 0 && r.requests > 0 && checked;
        runsByServer[p.name].push({
          round,
          mbps,
          rps: r.rps,
          p99Ms: r.p99Ms,
          serverCpuUsPerMB: r.requests ? (cpu1 - cpu0) / ((r.requests * UPLOAD_BYTES) / 1e6) : null,
          valid,
          non2xx: r.non2xx,
          checked,
        });
        log(
          `[round ${round}/${cfg.rounds}] upload      ${p.name.padEnd(15)} ${mbps.toFixed(0).padStart(6)} MB/s` +
            (valid ? '' : '  INVALID'),
        );
      } catch (e) {
        runsByServer[p.name].push({ round, valid: false, error: String(e.message || e) });
      }
      await sleep(200);
    }
  }
  const summary = {};
  for (const [name, rs] of Object.entries(runsByServer)) {
    const m = rs.filter((r) => Number.isFinite(r.mbps));
    summary[name] = m.length
      ? {
          mbps: median(m.map((r) => r.mbps)),
          serverCpuUsPerMB: median(m.map((r) => r.serverCpuUsPerMB)),
          valid: rs.every((r) => r.valid),
        }
      : { mbps: null, valid: false };
  }
  const base = summary.nodeExposure && summary.nodeExposure.mbps;
  for (const v of Object.values(summary)) v.vsNodeExposure = base && v.mbps ? v.mbps / base : null;
  return { bytes: UPLOAD_BYTES, connections: UPLOAD_CONNECTIONS, summary, runs: runsByServer };
}

// ------------------------------------------------------------------ fixed-rate phase

async function fixedRatePhase(live, summary) {
  const kind = 'add';
  let rate = cfg.fixedRate;
  let source = 'BENCH_FIXED_RATE';
  if (rate === 'auto') {
    const has = (k) => summary[k] && summary[k]['node-http'] && summary[k]['node-http'].rps;
    const key = has(`add@${cfg.fixedConnections}`)
      ? `add@${cfg.fixedConnections}`
      : Object.keys(summary).find((k) => k.startsWith('add@') && has(k));
    if (!key) {
      log('\nfixed-rate latency: skipped (needs node-http measured on the add scenario, or BENCH_FIXED_RATE=<req/s>)');
      return { skipped: 'no node-http add@ measurement and no BENCH_FIXED_RATE' };
    }
    rate = Math.max(100, Math.round(summary[key]['node-http'].rps / 2 / 100) * 100);
    source = `half of node-http's max on ${key}`;
  }
  log(`\nfixed-rate latency: ${rate} req/s (${source}), ${cfg.fixedConnections} connections, open-loop generator`);
  const runsByServer = Object.fromEntries(live.map((p) => [p.name, []]));
  for (let round = 1; round <= cfg.rounds; round++) {
    const order = live.map((_, i) => live[(i + round - 1) % live.length]);
    for (const p of order) {
      const tag = `[round ${round}/${cfg.rounds}] fixed ${String(rate).padEnd(6)} ${p.name.padEnd(15)}`;
      if (!p.alive) {
        runsByServer[p.name].push({ round, valid: false, error: 'server not running' });
        continue;
      }
      const cpu0 = readCpuMicros(p.pid);
      let result = null;
      const { exited } = runChild(
        'openloop.js',
        {
          port: p.port,
          path: SCENARIO_KINDS[kind].path,
          bodyFile: bodyFiles[kind],
          rate,
          warmupS: Math.min(1, cfg.warmupS || 1),
          durationS: cfg.durationS,
          connections: cfg.fixedConnections,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        },
        {
          onStdoutLine: (l) => {
            try {
              result = JSON.parse(l);
            } catch {}
          },
        },
      );
      const { code, err } = await exited;
      const cpu1 = p.alive ? readCpuMicros(p.pid) : NaN;
      if (!result) {
        runsByServer[p.name].push({
          round,
          valid: false,
          error: `generator exited ${code}: ${err.trim().slice(-300)}`,
        });
        log(`${tag} ERROR generator exited ${code}`);
        continue;
      }
      const keptUp = result.achievedRps >= 0.97 * rate;
      const reasons = [];
      if (result.non2xx) reasons.push(`${result.non2xx} non-2xx`);
      if (result.errors) reasons.push(`${result.errors} socket errors`);
      // requests still queued when the schedule ended only mean "fell behind" (keptUp=false)
      const r = {
        round,
        ...result,
        keptUp,
        valid: reasons.length === 0,
        invalidReasons: reasons,
        serverCpuUsPerReq: result.completed ? (cpu1 - cpu0) / result.completed : null,
      };
      runsByServer[p.name].push(r);
      log(
        `${tag} achieved ${fmt.int(r.achievedRps)} req/s  p50 ${fmt.ms(r.p50Ms)}ms  p99 ${fmt.ms(r.p99Ms)}ms  ` +
          `p99.9 ${fmt.ms(r.p999Ms)}ms  server ${fmt.us(r.serverCpuUsPerReq)}µs/req` +
          (keptUp ? '' : '  (fell behind the schedule)') +
          (r.valid ? '' : '  INVALID: ' + reasons.join(', ')),
      );
      await sleep(200);
    }
  }
  const med = {};
  for (const [n, rs] of Object.entries(runsByServer)) {
    const m = rs.filter((r) => Number.isFinite(r.p99Ms));
    med[n] = m.length
      ? {
          achievedRps: median(m.map((r) => r.achievedRps)),
          p50Ms: median(m.map((r) => r.p50Ms)),
          p99Ms: median(m.map((r) => r.p99Ms)),
          p999Ms: median(m.map((r) => r.p999Ms)),
          serverCpuUsPerReq: median(m.map((r) => r.serverCpuUsPerReq)),
          keptUp: m.every((r) => r.keptUp),
          valid: rs.every((r) => r.valid),
        }
      : { valid: false };
  }
  return { rate, source, scenario: kind, connections: cfg.fixedConnections, summary: med, runs: runsByServer };
}

// ------------------------------------------------------------------ idle memory phase

async function idleMemoryPhase(names) {
  const n = cfg.idleConns;
  log(`\nidle keep-alive memory: ${n} connections per server (fresh server process, warmed with wrk first)`);
  const out = {};
  for (const name of names) {
    const p = await new ServerProc(name).start({ exposeGc: true });
    if (p.state !== 'ready') {
      out[name] = { error: `${p.state}: ${p.reason}` };
      continue;
    }
    try {
      await runWrk({
        bin: wrkBin,
        url: `http://127.0.0.1:${p.port}${SCENARIO_KINDS.add.path}`,
        script: path.join(tmpDir, 'add.lua'),
        connections: 64,
        durationS: 1,
      });
      await sleep(500);
      await p.gc();
      await sleep(500);
      const rss0 = readRssKb(p.pid);
      let ready = null;
      let countMsg = null;
      const { child, exited } = runChild(
        'idleconns.js',
        {
          port: p.port,
          path: SCENARIO_KINDS.add.path,
          bodyFile: bodyFiles.add,
          count: n,
          concurrency: 50,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        },
        {
          onStdoutLine: (l) => {
            try {
              const m = JSON.parse(l);
              if (m.ready) ready = m;
              else if ('open' in m) countMsg = m;
            } catch {}
          },
        },
      );
      const deadline = Date.now() + 60000;
      while (!ready && Date.now() < deadline) await sleep(50);
      if (!ready) throw new Error('idle-connection client did not get ready in 60 s');
      await sleep(500);
      await p.gc();
      await sleep(500);
      const rss1 = readRssKb(p.pid);
      child.stdin.write('count\n');
      while (!countMsg && Date.now() < deadline) await sleep(20);
      child.stdin.end();
      await exited;
      const open = countMsg ? countMsg.open : ready.open;
      out[name] = {
        connections: open,
        failed: ready.failed,
        rssBeforeMiB: +(rss0 / 1024).toFixed(1),
        rssAfterMiB: +(rss1 / 1024).toFixed(1),
        bytesPerConnection: open > 0 ? Math.round(((rss1 - rss0) * 1024) / open) : null,
      };
      log(
        `   ${name.padEnd(15)} ${open}/${n} open  RSS ${out[name].rssBeforeMiB} → ${out[name].rssAfterMiB} MiB  ` +
          `≈ ${out[name].bytesPerConnection == null ? '-' : (out[name].bytesPerConnection / 1024).toFixed(1)} KiB/conn`,
      );
    } catch (e) {
      out[name] = { error: String(e.message || e) };
      log(`   ${name.padEnd(15)} ERROR ${e.message}`);
    }
    await p.stop();
  }
  return out;
}

// ------------------------------------------------------------------ rendering

function renderText(result, names) {
  const { summary } = result;
  const headers = [
    'scenario',
    'server',
    'req/s',
    'vs node-http',
    'vs nodeExposure',
    'vs rust',
    'server µs/req',
    'p50 ms',
    'p99 ms',
    'valid',
  ];
  const align = ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'];
  const rows = [];
  for (const s of scenarios) {
    for (const n of names) {
      const r = summary[s.name][n];
      rows.push([
        s.name,
        n,
        fmt.int(r.rps),
        fmt.x(r.ratio && r.ratio['node-http']),
        fmt.x(r.ratio && r.ratio.nodeExposure),
        fmt.x(r.ratio && r.ratio.rust),
        fmt.us(r.serverCpuUsPerReq),
        fmt.ms(r.p50Ms),
        fmt.ms(r.p99Ms),
        r.valid ? 'yes' : 'NO',
      ]);
    }
  }
  const m = result.machine;
  const p = result.parameters;
  const head =
    `${m.cpus}× ${m.cpuModel}, ${m.platform}, Node ${m.node}, wrk ${m.wrk} -t${p.wrk.threads}; ` +
    `median of ${p.rounds} round(s) × ${p.durationS}s (+${p.warmupS}s warm-up); ${result.date}`;
  const plain = ['', `Throughput (${head})`, table(headers, rows, align)];
  const md = [`Throughput — ${head}`, '', mdTable(headers, rows, align)];

  if (result.fixedRate && result.fixedRate.summary) {
    const fr = result.fixedRate;
    const h = ['server', 'achieved req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server µs/req', 'kept up', 'valid'];
    const a = ['l', 'r', 'r', 'r', 'r', 'r', 'l', 'l'];
    const rs = names.map((n) => {
      const r = fr.summary[n] || {};
      return [
        n,
        fmt.int(r.achievedRps),
        fmt.ms(r.p50Ms),
        fmt.ms(r.p99Ms),
        fmt.ms(r.p999Ms),
        fmt.us(r.serverCpuUsPerReq),
        r.keptUp ? 'yes' : 'NO',
        r.valid ? 'yes' : 'NO',
      ];
    });
    const title = `Latency at a fixed ${fr.rate} req/s (${fr.source}; tiny task, ${fr.connections} connections, open-loop)`;
    plain.push('', title, table(h, rs, a));
    md.push('', title, '', mdTable(h, rs, a));
  } else if (result.fixedRate && result.fixedRate.skipped) {
    plain.push('', `Fixed-rate latency: skipped (${result.fixedRate.skipped})`);
  }

  if (result.upload && result.upload.summary) {
    const h = ['server', 'MB/s', 'vs nodeExposure', 'server CPU µs/MB', 'valid'];
    const a = ['l', 'r', 'r', 'r', 'l'];
    const rs = Object.entries(result.upload.summary).map(([n, r]) => [
      n,
      r.mbps == null ? '-' : r.mbps.toFixed(0),
      fmt.x(r.vsNodeExposure),
      r.serverCpuUsPerMB == null ? '-' : r.serverCpuUsPerMB.toFixed(0),
      r.valid ? 'yes' : 'NO',
    ]);
    const title = `Upload throughput (${result.upload.bytes}-byte application/octet-stream bodies streamed by the task, ${result.upload.connections} connections)`;
    plain.push('', title, table(h, rs, a));
    md.push('', title, '', mdTable(h, rs, a));
  }

  const tlsText = renderTls(result.tls);
  if (tlsText) {
    plain.push(...tlsText.plain);
    md.push(...tlsText.md);
  }

  if (result.idleMemory) {
    const h = ['server', 'idle conns', 'RSS before MiB', 'RSS after MiB', 'KiB / idle conn'];
    const a = ['l', 'r', 'r', 'r', 'r'];
    const rs = names.map((n) => {
      const r = result.idleMemory[n] || {};
      if (r.error) return [n, 'error', '-', '-', r.error.slice(0, 40)];
      return [
        n,
        fmt.int(r.connections),
        String(r.rssBeforeMiB),
        String(r.rssAfterMiB),
        r.bytesPerConnection == null ? '-' : (r.bytesPerConnection / 1024).toFixed(1),
      ];
    });
    const title = `Memory per idle keep-alive connection (${result.parameters.idleConnections} connections, VmRSS growth / open connections)`;
    plain.push('', title, table(h, rs, a));
    md.push('', title, '', mdTable(h, rs, a));
  }

  if (result.noisyRuns) {
    const w = `WARNING: ${result.noisyRuns} run(s) saw more than ${BACKGROUND_WARN} cores of unrelated CPU use (see backgroundCpuCores in the JSON); re-run on a quiet machine.`;
    plain.push('', w);
    md.push('', `> ${w}`);
  }

  if (result.stealRemeasured) {
    const w = `${result.stealRemeasured} throughput run(s) were measured again: the hypervisor took more than ${STEAL_REDO} cores from this VM during them (see stealCpuCores and attempt in the JSON).`;
    plain.push('', w);
    md.push('', w);
  }

  if (result.skipped.length) {
    plain.push('', 'Not measured:');
    md.push('', 'Not measured:', '');
    for (const s of result.skipped) {
      plain.push(`  ${s.server}: ${s.state} — ${s.reason}`);
      md.push(`- ${s.server}: ${s.state} — ${s.reason}`);
    }
  }
  return { plain: plain.join('\n'), markdown: md.join('\n') };
}

function renderSvg(result, names) {
  const labels = {};
  for (const s of scenarios) labels[s.name] = `${s.connections} connections`;
  const panels = KINDS.map((kind) => ({
    title: SCENARIO_KINDS[kind].label,
    scenarios: scenarios.filter((s) => s.kind === kind).map((s) => s.name),
  })).filter((p) => p.scenarios.length);
  const m = result.machine;
  const p = result.parameters;
  return barChart({
    panels,
    labels,
    servers: names,
    get: (sc, sv) => {
      const r = result.summary[sc][sv];
      return r && r.rps != null ? { value: r.rps, valid: r.valid } : null;
    },
    title: 'Runner tunnel protocol over HTTP: requests/s (higher is better)',
    subtitle:
      `${m.cpus}× ${m.cpuModel}, Node ${m.node}, wrk -t${p.wrk.threads} (load generator on the same machine); ` +
      `median of ${p.rounds} × ${p.durationS}s; ${result.date.slice(0, 10)}` +
      (result.noisyRuns ? ` — ${result.noisyRuns} run(s) had other load on the machine` : ''),
  });
}

async function cleanup() {
  for (const p of allProcs) await p.stop();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${sig}: stopping servers`);
    await cleanup();
    process.exit(130);
  });
}

/** `BENCH_RENDER=results.json`: re-render a saved run's table and chart. */
function renderSaved(file) {
  const result = JSON.parse(fs.readFileSync(file, 'utf8'));
  const names = Object.keys(Object.values(result.summary)[0] || {});
  const text = renderText(result, names);
  console.log(text.plain);
  const out = file.replace(/\.json$/, '');
  fs.writeFileSync(`${out}.md`, text.markdown + '\n');
  fs.writeFileSync(`${out}.svg`, renderSvg(result, names));
}

if (env.BENCH_RENDER) {
  renderSaved(env.BENCH_RENDER);
} else {
  main().catch(async (e) => {
    log(e && e.stack ? e.stack : e);
    await cleanup();
    process.exit(1);
  });
}
