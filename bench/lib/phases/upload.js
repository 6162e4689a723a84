'use strict';
// Upload throughput: 1 MiB application/octet-stream bodies streamed by a task that counts
// their bytes, on the peers that can read the raw request stream. Rounds interleaved.
const fs = require('node:fs');
const path = require('node:path');
const { readCpuMicros, sleep, rotated, medians } = require('../common');
const { runWrk, writeLuaScript } = require('../wrk');
const { post } = require('../checks');

/** Peers whose task reads the raw request stream (`bench.upload`). */
const UPLOAD_SERVERS = ['native', 'nativeExposure', 'nodeExposure', 'node-http', 'uws', 'rust'];
const UPLOAD_BYTES = 1024 * 1024;
const UPLOAD_CONNECTIONS = 16;

/**
 * 1 MiB `application/octet-stream` bodies to a task that streams them and
 * counts the bytes; MB/s = completed uploads × 1 MiB / s. Rounds interleaved.
 */
async function uploadPhase(bench, live) {
  const { cfg, log, tmpDir, wrkBin } = bench;
  const peers = live.filter((p) => UPLOAD_SERVERS.includes(p.name));
  if (!peers.length) return { skipped: 'no upload-capable server running' };
  const file = path.join(tmpDir, 'upload.bin');
  fs.writeFileSync(file, Buffer.alloc(UPLOAD_BYTES, 0x61));
  const script = writeLuaScript(tmpDir, 'upload', file, 'application/octet-stream');
  log(`\nupload throughput: ${UPLOAD_BYTES} byte bodies, ${UPLOAD_CONNECTIONS} connections`);
  const runsByServer = Object.fromEntries(peers.map((p) => [p.name, []]));
  for (let round = 1; round <= cfg.rounds; round++) {
    const order = rotated(peers, round);
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
          ...medians(m, ['mbps', 'serverCpuUsPerMB']),
          valid: rs.every((r) => r.valid),
        }
      : { mbps: null, valid: false };
  }
  const base = summary.nodeExposure && summary.nodeExposure.mbps;
  for (const v of Object.values(summary)) v.vsNodeExposure = base && v.mbps ? v.mbps / base : null;
  return { bytes: UPLOAD_BYTES, connections: UPLOAD_CONNECTIONS, summary, runs: runsByServer };
}

module.exports = { uploadPhase };
