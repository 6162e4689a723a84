'use strict';
// The HTTPS phase: the native server with the tls option (bench/servers/native-tls.js)
// against Node's https doing the node-http peer's work (bench/servers/node-https.js), both
// with the test certificate (EC P-256), wrk over https:// keep-alive connections. Rounds
// are interleaved and the median reported, as in the throughput phase.
const https = require('node:https');
const { TOKEN, TOKEN_HEADER, SCENARIO_KINDS, readCpuMicros, sleep } = require('./common');
const { runWrk } = require('./wrk');

const TLS_SERVERS = ['native-tls', 'node-https'];
const TLS_KINDS = ['add', 'echo16k'];

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** One HTTPS request to a peer (its certificate is the test one: not verified here). */
function post(port, urlPath, body) {
  return new Promise((resolve) => {
    const headers = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      [TOKEN_HEADER]: TOKEN,
    };
    const req = https.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent: false, rejectUnauthorized: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {}
          resolve({ status: res.statusCode, json });
        });
      },
    );
    req.on('error', (e) => resolve({ status: 0, json: null, error: e.message }));
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/**
 * Runs the phase. `start(name)` starts a peer (resolves with its ServerProc), `scripts`
 * and `bodies` are the throughput phase's wrk scripts and request bodies per kind.
 */
async function tlsPhase({ start, wrkBin, scripts, bodies, cfg, log }) {
  log(
    `\nHTTPS throughput: ${TLS_SERVERS.join(' vs ')}, wrk over https:// (keep-alive; TLS as the client negotiates it)`,
  );
  const peers = [];
  for (const name of TLS_SERVERS) {
    const p = await start(name);
    if (p.state === 'ready') {
      log(`   ${name.padEnd(15)} ready on :${p.port} (pid ${p.pid})`);
      peers.push(p);
    } else log(`   ${name.padEnd(15)} ${p.state.toUpperCase()}: ${p.reason}`);
  }
  if (peers.length < TLS_SERVERS.length) {
    for (const p of peers) await p.stop();
    return { skipped: 'a TLS peer could not be started' };
  }
  const checks = {};
  for (const p of peers) {
    checks[p.name] = true;
    for (const kind of TLS_KINDS) {
      const r = await post(p.port, SCENARIO_KINDS[kind].path, bodies[kind]);
      if (r.status !== 200 || !SCENARIO_KINDS[kind].check(r.json, bodies[kind])) {
        checks[p.name] = false;
        log(`!! ${p.name} failed the ${kind} check over HTTPS: ${r.status} ${r.error || ''}`);
      }
    }
  }
  const scenarios = TLS_KINDS.flatMap((kind) =>
    cfg.connections.map((c) => ({ name: `${kind}@${c}`, kind, connections: c })),
  );
  const runs = Object.fromEntries(scenarios.map((s) => [s.name, Object.fromEntries(peers.map((p) => [p.name, []]))]));
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const s of scenarios) {
      const order = peers.map((_, i) => peers[(i + round - 1) % peers.length]);
      for (const p of order) {
        const url = `https://127.0.0.1:${p.port}${SCENARIO_KINDS[s.kind].path}`;
        const wrk = { bin: wrkBin, url, script: scripts[s.kind], connections: s.connections, threads: cfg.wrkThreads };
        try {
          if (cfg.warmupS > 0) await runWrk({ ...wrk, durationS: cfg.warmupS });
          const cpu0 = readCpuMicros(p.pid);
          const r = await runWrk({ ...wrk, durationS: cfg.durationS });
          const cpu1 = p.alive ? readCpuMicros(p.pid) : NaN;
          const valid = r.non2xx === 0 && r.socketErrors === 0 && r.requests > 0 && checks[p.name] && p.alive;
          const res = {
            round,
            valid,
            rps: r.rps,
            p50Ms: r.p50Ms,
            p99Ms: r.p99Ms,
            serverCpuUsPerReq: r.requests ? (cpu1 - cpu0) / r.requests : null,
            non2xx: r.non2xx,
            socketErrors: r.errors,
          };
          runs[s.name][p.name].push(res);
          log(
            `[round ${round}/${cfg.rounds}] https ${s.name.padEnd(11)} ${p.name.padEnd(11)} ${Math.round(r.rps)
              .toLocaleString('en-US')
              .padStart(8)} req/s  p99 ${r.p99Ms.toFixed(2)}ms  server ${res.serverCpuUsPerReq?.toFixed(1)}µs/req` +
              (valid ? '' : '  INVALID'),
          );
        } catch (e) {
          runs[s.name][p.name].push({ round, valid: false, error: String(e.message || e) });
          log(`[round ${round}/${cfg.rounds}] https ${s.name} ${p.name} ERROR ${e.message}`);
        }
        await sleep(200);
      }
    }
  }
  for (const p of peers) await p.stop();
  const summary = {};
  for (const s of scenarios) {
    summary[s.name] = {};
    for (const p of peers) {
      const rs = runs[s.name][p.name];
      summary[s.name][p.name] = {
        rps: median(rs.map((r) => r.rps)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        serverCpuUsPerReq: median(rs.map((r) => r.serverCpuUsPerReq)),
        valid: rs.length > 0 && rs.every((r) => r.valid),
      };
    }
    const [a, b] = TLS_SERVERS.map((n) => summary[s.name][n].rps);
    summary[s.name].ratio = a && b ? a / b : null;
  }
  return { servers: TLS_SERVERS, scenarios: scenarios.map((s) => s.name), summary, runs };
}

/** The phase's table, as plain text and Markdown lines; null when it did not run. */
function renderTls(tls) {
  if (!tls || !tls.summary)
    return tls && tls.skipped ? { plain: ['', `HTTPS: skipped (${tls.skipped})`], md: [] } : null;
  const [a, b] = tls.servers;
  const h = ['scenario', `${a} req/s`, `${b} req/s`, `${a} / ${b}`, `${a} µs/req`, `${b} µs/req`, 'valid'];
  const fmt = (x, d = 0) => (x == null ? '-' : d ? x.toFixed(d) : Math.round(x).toLocaleString('en-US'));
  const rows = tls.scenarios.map((n) => {
    const s = tls.summary[n];
    return [
      n,
      fmt(s[a].rps),
      fmt(s[b].rps),
      s.ratio == null ? '-' : `${s.ratio.toFixed(2)}×`,
      fmt(s[a].serverCpuUsPerReq, 1),
      fmt(s[b].serverCpuUsPerReq, 1),
      s[a].valid && s[b].valid ? 'yes' : 'NO',
    ];
  });
  const title = `HTTPS (wrk over TLS, keep-alive): the native server with tls vs Node's https doing node-http's work`;
  const widths = h.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const plain = ['', title, line(h), ...rows.map(line)];
  const md = [
    '',
    title,
    '',
    `| ${h.join(' | ')} |`,
    `| ${h.map((_, i) => (i ? '---:' : ':---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  return { plain, md };
}

module.exports = { tlsPhase, renderTls, TLS_SERVERS };
