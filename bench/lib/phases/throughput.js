'use strict';
// Throughput: for each round, scenario and peer (the order rotated each round), a wrk warm-up,
// then a measured wrk run with the peer's CPU time and the machine's read around it; the
// median across rounds per scenario and peer, with the ratios to the baselines.
const { readCpuMicros, readChildrenCpuMicros, readMachineCpu, sleep, rotated, medians } = require('../common');
const { runWrk } = require('../wrk');
const { BASELINES, BACKGROUND_WARN, STEAL_REDO, STEAL_RETRIES } = require('../config');
const { fmt } = require('../report');

/**
 * `bench`: the run (cfg, scenarios, log, wrkBin, scripts); `live`: the ready peers; `checks`:
 * their correctness checks by name. Resolves { runs, summary, stealRedone }.
 */
async function throughputPhase(bench, live, checks) {
  const { cfg, scenarios, log, wrkBin, scripts } = bench;
  const names = live.map((p) => p.name);
  const runs = {}; // runs[scenario][server] = [round results]
  let stealRedone = 0; // throughput runs measured again after the hypervisor took CPU
  for (const s of scenarios) runs[s.name] = Object.fromEntries(names.map((n) => [n, []]));

  for (let round = 1; round <= cfg.rounds; round++) {
    for (const s of scenarios) {
      const order = rotated(live, round);
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
            ...medians(measured, ['rps', 'p50Ms', 'p99Ms', 'serverCpuUsPerReq', 'serverCpuCores']),
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
  return { runs, summary, stealRedone };
}

module.exports = { throughputPhase };
