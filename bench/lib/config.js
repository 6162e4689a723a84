'use strict';
// What a bench run measures, read from the BENCH_* environment variables (bench/README.md lists
// them): the peers, the scenarios, rounds and durations, the phases to run.
const path = require('node:path');
const { SCENARIO_KINDS } = require('./common');

const ALL_SERVERS = ['native', 'nativeExposure', 'nodeExposure', 'node-http', 'uws', 'fastify', 'brahma', 'rust'];
const BASELINES = ['node-http', 'nodeExposure', 'rust'];
const BACKGROUND_WARN = 0.15; // cores of unrelated CPU use during a run worth warning about
// A throughput run during which the hypervisor took (stole) more than this
// many cores from the VM is measured again, up to STEAL_RETRIES times.
const STEAL_REDO = 0.05;
const STEAL_RETRIES = 2;
const KINDS = ['add', 'echo16k', 'event'];

const list = (v) =>
  v
    ? String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
const num = (v, d) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? d : Number(v));

/**
 * The run's configuration from `env`: { cfg, scenarios, smokeStandIn }. Exits with status 2,
 * saying why on `log`, when BENCH_SERVERS names an unknown peer or BENCH_SCENARIOS matches nothing.
 */
function readConfig(env, log) {
  const SMOKE = env.BENCH_SMOKE === '1' || env.BENCH_SMOKE === 'true';
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
    verbose: !!env.BENCH_VERBOSE,
    out: env.BENCH_OUT
      ? path.resolve(env.BENCH_OUT)
      : path.join(__dirname, '..', 'results', SMOKE ? 'smoke' : 'latest'),
  };
  // In smoke mode the default pair is native + node-http; while the addon isn't built,
  // nodeExposure stands in for native (see startServers).
  const smokeStandIn = SMOKE && !env.BENCH_SERVERS ? { native: 'nodeExposure' } : {};

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
  return { cfg, scenarios, smokeStandIn };
}

module.exports = { readConfig, ALL_SERVERS, BASELINES, BACKGROUND_WARN, STEAL_REDO, STEAL_RETRIES, KINDS };
