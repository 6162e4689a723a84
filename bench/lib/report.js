'use strict';
// A run's report: the number formats of the progress lines, the plain-text and Markdown
// tables, the SVG chart, and the machine description saved with the results.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ROOT, SCENARIO_KINDS } = require('./common');
const { wrkVersion } = require('./wrk');
const { barChart } = require('./svg');
const { BACKGROUND_WARN, STEAL_REDO, KINDS } = require('./config');

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

/** The machine, tool versions and commit a run is measured on (`wrkBin`: the wrk used). */
function machineInfo(wrkBin) {
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

/** The tables of a run's result, `{ plain, markdown }`; `scenarios`: those of the run's config. */
function renderText(result, names, scenarios) {
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

/** The requests/s chart of a run's result (SVG text). */
function renderSvg(result, names, scenarios) {
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

module.exports = { fmt, table, mdTable, machineInfo, renderText, renderSvg };
