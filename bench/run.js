#!/usr/bin/env node
'use strict';
// Benchmark harness for @bluelibs/runner-native.  `npm run bench`
//
// Every peer runs in its own child process (bench/servers/<name>.js), so its CPU time is
// read from /proc/<pid>/stat around each measured run. Load comes from wrk (1 thread,
// --latency), rounds are interleaved (round → scenario → server) and the median across
// rounds is reported. See bench/README.md for the knobs. The pieces live in bench/lib/:
//   config.js          BENCH_* environment variables → what to measure
//   peers.js           the peer processes (start, stop, GC, crash detection)
//   checks.js          the correctness check each peer passes before it is measured
//   wrk.js             wrk: finding it, its Lua scripts, running it and parsing its summary
//   phases/*.js        throughput, fixed-rate latency, upload, idle-connection memory
//   report.js, svg.js  the tables, the Markdown and the chart
//   openloop.js, idleconns.js  load generators run as children (child.js)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { SCENARIO_KINDS } = require('./lib/common');
const { ensureWrk, writeLuaScript } = require('./lib/wrk');
const { readConfig, BACKGROUND_WARN, KINDS } = require('./lib/config');
const { ServerProc, startServers, stopAll } = require('./lib/peers');
const { checkServer } = require('./lib/checks');
const { throughputPhase } = require('./lib/phases/throughput');
const { fixedRatePhase } = require('./lib/phases/fixed-rate');
const { uploadPhase } = require('./lib/phases/upload');
const { idleMemoryPhase } = require('./lib/phases/idle-memory');
const { tlsPhase, renderTls } = require('./lib/tls');
const { cpuPhase, renderCpu } = require('./lib/phases/cpu');
const { machineInfo, renderText, renderSvg } = require('./lib/report');

const log = (...a) => console.error(...a);

const env = process.env;
const { cfg, scenarios, smokeStandIn } = readConfig(env, log);
const SMOKE = cfg.smoke;

let tmpDir;

async function main() {
  const t0 = Date.now();
  const loadAtStart = os.loadavg().map((x) => +x.toFixed(2));
  if (loadAtStart[0] > 0.5) {
    log(`note: load average is ${loadAtStart.join(' ')} before starting; other work on this machine skews the numbers`);
  }
  const wrkBin = ensureWrk(log);
  if (!wrkBin) {
    log('wrk is required: apt-get install -y wrk   (then re-run `npm run bench`)');
    process.exit(1);
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-bench-'));
  const bodies = {};
  const bodyFiles = {};
  for (const kind of KINDS) {
    bodies[kind] = SCENARIO_KINDS[kind].body();
    bodyFiles[kind] = path.join(tmpDir, `${kind}.json`);
    fs.writeFileSync(bodyFiles[kind], bodies[kind]);
  }
  const scripts = {};
  for (const kind of KINDS) scripts[kind] = writeLuaScript(tmpDir, kind, bodyFiles[kind]);
  const bench = { cfg, scenarios, log, tmpDir, wrkBin, bodies, bodyFiles, scripts };

  log(
    `runner-native bench${SMOKE ? ' (SMOKE)' : ''}: ${cfg.rounds} round(s) × ${cfg.durationS}s (+${cfg.warmupS}s warm-up), ` +
      `wrk -t${cfg.wrkThreads}, scenarios ${scenarios.map((s) => s.name).join(' ')}`,
  );
  log('starting servers:');
  const procs = await startServers(cfg.servers, { standIn: smokeStandIn, logDir: tmpDir, log, verbose: cfg.verbose });
  const skipped = procs
    .filter((p) => p.state !== 'ready')
    .map((p) => ({ server: p.name, state: p.state, reason: p.reason }));
  let live = procs.filter((p) => p.state === 'ready');

  const checks = {};
  for (const p of live) {
    const c = await checkServer(p, scenarios, bodies);
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
  const { runs, summary, stealRedone } = await throughputPhase(bench, live, checks);

  // ---------------------------------------------------------------- fixed-rate latency
  let fixed = null;
  if (cfg.fixedRate !== 0) {
    fixed = await fixedRatePhase(bench, live, summary);
  }

  // ---------------------------------------------------------------- upload throughput
  let upload = null;
  if (cfg.upload) {
    upload = await uploadPhase(bench, live);
  }

  // ---------------------------------------------------------------- HTTPS (BENCH_TLS=0 skips it)
  const tls =
    SMOKE || env.BENCH_TLS === '0'
      ? null
      : await tlsPhase({
          start: (name) => new ServerProc(name, { logDir: tmpDir, log, verbose: cfg.verbose }).start(),
          wrkBin,
          scripts,
          bodies,
          cfg,
          log,
        });

  // ---------------------------------------------------------------- CPU-bound (BENCH_CPU=0 skips it)
  const cpu =
    SMOKE || env.BENCH_CPU === '0'
      ? null
      : await cpuPhase({
          start: (name) => new ServerProc(name, { logDir: tmpDir, log, verbose: cfg.verbose }).start(),
          wrkBin,
          cfg,
          log,
          tmpDir,
        });

  // ---------------------------------------------------------------- idle keep-alive memory
  let idleMemory = null;
  if (cfg.idleConns > 0) {
    // stop the throughput instances first: memory is measured on fresh ones, one at a time
    for (const p of procs) await p.stop();
    idleMemory = await idleMemoryPhase(bench, names);
  }

  await cleanup();

  // ---------------------------------------------------------------- report
  const result = {
    date: new Date().toISOString(),
    machine: machineInfo(wrkBin),
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
    cpu,
    idleMemory,
    runs,
    elapsedS: Math.round((Date.now() - t0) / 1000),
  };

  const allRuns = Object.values(runs).flatMap((byServer) => Object.values(byServer).flat());
  const noisy = allRuns.filter((r) => r.backgroundCpuCores > BACKGROUND_WARN);
  result.noisyRuns = noisy.length;
  result.stealRemeasured = stealRedone;
  result.loadAverageAtStart = loadAtStart;
  const text = renderText(result, names, scenarios);
  const tlsText = renderTls(result.tls);
  if (tlsText) {
    text.plain += '\n' + tlsText.plain.join('\n');
    text.markdown += '\n' + tlsText.md.join('\n');
  }
  const cpuText = renderCpu(result.cpu);
  if (cpuText) {
    text.plain += '\n' + cpuText.plain.join('\n');
    text.markdown += '\n' + cpuText.md.join('\n');
  }
  console.log(text.plain);

  fs.mkdirSync(path.dirname(cfg.out), { recursive: true });
  fs.writeFileSync(`${cfg.out}.json`, JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(`${cfg.out}.md`, text.markdown + '\n');
  fs.writeFileSync(`${cfg.out}.svg`, renderSvg(result, names, scenarios));
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

async function cleanup() {
  await stopAll();
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
  const text = renderText(result, names, scenarios);
  console.log(text.plain);
  const out = file.replace(/\.json$/, '');
  fs.writeFileSync(`${out}.md`, text.markdown + '\n');
  fs.writeFileSync(`${out}.svg`, renderSvg(result, names, scenarios));
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
