'use strict';
// Latency at a fixed rate: the open-loop generator (openloop.js) at a constant request rate,
// latency counted from the scheduled send time; medians across rounds.
const { TOKEN, TOKEN_HEADER, SCENARIO_KINDS, readCpuMicros, sleep, rotated, medians } = require('../common');
const { runChild } = require('../child');
const { fmt } = require('../report');

/**
 * `bench`: the run (cfg, log, bodyFiles); `live`: the ready peers; `summary`: the throughput
 * medians (the rate defaults to half of node-http's maximum on add).
 */
async function fixedRatePhase(bench, live, summary) {
  const { cfg, log, bodyFiles } = bench;
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
    const order = rotated(live, round);
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
          ...medians(m, ['achievedRps', 'p50Ms', 'p99Ms', 'p999Ms', 'serverCpuUsPerReq']),
          keptUp: m.every((r) => r.keptUp),
          valid: rs.every((r) => r.valid),
        }
      : { valid: false };
  }
  return { rate, source, scenario: kind, connections: cfg.fixedConnections, summary: med, runs: runsByServer };
}

module.exports = { fixedRatePhase };
