'use strict';
// The CPU-bound phase: a task doing ~100 µs of JS work on its input (`cpuWork` in
// common.js: sort 600 integers, hash them), where one JS thread is the limit. The native
// server with its handlers in one isolate and in two (worker threads sharing its listener,
// `share: true`) against Node's http and nodeExposure under node:cluster with two worker
// processes, plain Node http, and uWebSockets.js. Server CPU counts every process of a
// peer (a cluster's primary and workers). Rounds interleaved; medians reported.
const fs = require('node:fs');
const path = require('node:path');
const { SCENARIO_KINDS, readTreeCpuMicros, sleep, rotated, median } = require('../common');
const { runWrk, writeLuaScript } = require('../wrk');
const { post } = require('../checks');

const CPU_SERVERS = [
  'native-1isolate',
  'native-2isolates',
  'node-http',
  'node-http-cluster',
  'nodeExposure-cluster',
  'uws',
];
const CPU_CONNECTIONS = 64;

/** Runs the phase; `start(name)` starts a peer and resolves with its ServerProc. */
async function cpuPhase({ start, wrkBin, cfg, log, tmpDir }) {
  const kind = SCENARIO_KINDS.cpu;
  const body = kind.body();
  const file = path.join(tmpDir, 'cpu.json');
  fs.writeFileSync(file, body);
  const script = writeLuaScript(tmpDir, 'cpu', file);
  log(`\nCPU-bound task (~100 µs of JS per call), ${CPU_CONNECTIONS} connections`);
  const peers = [];
  for (const name of CPU_SERVERS) {
    const p = await start(name);
    if (p.state !== 'ready') {
      log(`   ${name.padEnd(20)} ${p.state.toUpperCase()}: ${p.reason}`);
      continue;
    }
    const r = await post(p.port, kind.path, body);
    p.checked = r.status === 200 && kind.check(r.json, body);
    if (!p.checked) log(`!! ${name} failed the CPU-bound check: HTTP ${r.status}`);
    log(`   ${name.padEnd(20)} ready on :${p.port} (pid ${p.pid})`);
    peers.push(p);
  }
  const runs = Object.fromEntries(peers.map((p) => [p.name, []]));
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const p of rotated(peers, round)) {
      if (!p.alive) continue;
      const wrk = {
        bin: wrkBin,
        url: `http://127.0.0.1:${p.port}${kind.path}`,
        script,
        connections: CPU_CONNECTIONS,
        threads: cfg.wrkThreads,
      };
      try {
        if (cfg.warmupS > 0) await runWrk({ ...wrk, durationS: cfg.warmupS });
        const cpu0 = readTreeCpuMicros(p.pid);
        const r = await runWrk({ ...wrk, durationS: cfg.durationS });
        const cpu1 = p.alive ? readTreeCpuMicros(p.pid) : NaN;
        const valid = r.non2xx === 0 && r.socketErrors === 0 && r.requests > 0 && p.checked && p.alive;
        const run = {
          round,
          valid,
          rps: r.rps,
          p99Ms: r.p99Ms,
          serverCpuUsPerReq: r.requests ? (cpu1 - cpu0) / r.requests : null,
          serverCores: (cpu1 - cpu0) / 1e6 / r.seconds,
        };
        runs[p.name].push(run);
        log(
          `[round ${round}/${cfg.rounds}] cpu ${p.name.padEnd(20)} ${Math.round(r.rps)
            .toLocaleString('en-US')
            .padStart(8)} req/s  p99 ${r.p99Ms.toFixed(2)}ms  server ${run.serverCpuUsPerReq?.toFixed(1)}µs/req ` +
            `(${run.serverCores.toFixed(2)} cores)` +
            (valid ? '' : '  INVALID'),
        );
      } catch (e) {
        runs[p.name].push({ round, valid: false, error: String(e.message || e) });
      }
      await sleep(200);
    }
  }
  for (const p of peers) await p.stop();
  const summary = {};
  for (const [name, rs] of Object.entries(runs)) {
    summary[name] = {
      rps: median(rs.map((r) => r.rps).filter(Number.isFinite)),
      p99Ms: median(rs.map((r) => r.p99Ms).filter(Number.isFinite)),
      serverCpuUsPerReq: median(rs.map((r) => r.serverCpuUsPerReq).filter(Number.isFinite)),
      serverCores: median(rs.map((r) => r.serverCores).filter(Number.isFinite)),
      valid: rs.length > 0 && rs.every((r) => r.valid),
    };
  }
  const ratio = (a, b) => (summary[a]?.rps && summary[b]?.rps ? summary[a].rps / summary[b].rps : null);
  return {
    servers: peers.map((p) => p.name),
    connections: CPU_CONNECTIONS,
    summary,
    ratios: {
      twoIsolatesVsOne: ratio('native-2isolates', 'native-1isolate'),
      twoIsolatesVsNodeCluster: ratio('native-2isolates', 'node-http-cluster'),
      twoIsolatesVsNodeExposureCluster: ratio('native-2isolates', 'nodeExposure-cluster'),
    },
    runs,
  };
}

/** The phase's table, as plain text and Markdown lines; null when it did not run. */
function renderCpu(cpu) {
  if (!cpu || !cpu.summary) return null;
  const base = cpu.summary['native-1isolate'];
  const fmt = (x, d = 0) => (x == null ? '-' : d ? x.toFixed(d) : Math.round(x).toLocaleString('en-US'));
  const h = ['server', 'req/s', 'vs native 1 isolate', 'server µs/req', 'server cores', 'p99 ms', 'valid'];
  const rows = cpu.servers.map((name) => {
    const s = cpu.summary[name];
    return [
      name,
      fmt(s.rps),
      base && base.rps && s.rps ? `${(s.rps / base.rps).toFixed(2)}×` : '-',
      fmt(s.serverCpuUsPerReq, 1),
      fmt(s.serverCores, 2),
      fmt(s.p99Ms, 2),
      s.valid ? 'yes' : 'NO',
    ];
  });
  const title = `CPU-bound task (~100 µs of JS per call, ${cpu.connections} connections): isolates and cluster workers`;
  const widths = h.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const ratios = Object.entries(cpu.ratios)
    .filter(([, v]) => v != null)
    .map(([k, v]) => `${k} ${v.toFixed(2)}×`)
    .join(', ');
  const plain = ['', title, line(h), ...rows.map(line), ratios];
  const md = [
    '',
    title,
    '',
    `| ${h.join(' | ')} |`,
    `| ${h.map((_, i) => (i ? '---:' : ':---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    ratios,
  ];
  return { plain, md };
}

module.exports = { cpuPhase, renderCpu, CPU_SERVERS };
