'use strict';
// wrk driver: a Lua script per scenario (POST, body from a file, JSON + token headers,
// and a done() hook that prints a machine-readable summary line).
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { TOKEN, TOKEN_HEADER } = require('./common');

function wrkBinary() {
  const r = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' });
  const p = (r.stdout || '').trim();
  return r.status === 0 && p ? p : null;
}

function wrkVersion(bin) {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const m = /wrk\s+(\S+)/.exec((r.stdout || '') + (r.stderr || ''));
  return m ? m[1] : 'unknown';
}

/** Make sure wrk exists; if not, say how to get it and try apt-get once. */
function ensureWrk(log) {
  let bin = wrkBinary();
  if (bin) return bin;
  log('wrk not found. Install it with:  apt-get install -y wrk   (Debian/Ubuntu)   or  brew install wrk');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (isRoot && hasApt) {
    log('trying: apt-get install -y wrk ...');
    spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300000 });
    bin = wrkBinary();
    if (!bin) {
      spawnSync('sh', ['-c', 'apt-get update && apt-get install -y wrk'], {
        stdio: ['ignore', 'inherit', 'inherit'],
        timeout: 600000,
      });
      bin = wrkBinary();
    }
  }
  return bin;
}

const luaString = (s) => JSON.stringify(s); // JSON escapes are valid Lua escapes for plain paths

function writeLuaScript(dir, name, bodyFile, contentType = 'application/json') {
  const file = path.join(dir, `${name}.lua`);
  fs.writeFileSync(
    file,
    `local f = assert(io.open(${luaString(bodyFile)}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = ${luaString(contentType)}
wrk.headers[${luaString(TOKEN_HEADER)}] = ${luaString(TOKEN)}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"mean_us":%.1f,"stdev_us":%.1f,"max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
`,
  );
  return file;
}

/**
 * Run wrk once. Resolves { requests, rps, p50Ms, p99Ms, errors:{...}, non2xx, socketErrors, raw }.
 * Rejects only if wrk could not run at all.
 */
function runWrk({ bin, url, script, connections, durationS, threads = 1, timeoutS = 10 }) {
  const args = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${Math.max(1, Math.round(durationS))}s`,
    `--timeout`,
    `${timeoutS}s`,
    '--latency',
    '-s',
    script,
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (!line) return reject(new Error(`wrk exited ${code} without a summary: ${(err || out).trim().slice(0, 500)}`));
      const j = JSON.parse(line.slice('WRK_JSON '.length));
      const seconds = j.duration_us / 1e6;
      const socketErrors = j.connect + j.read + j.write + j.timeout;
      resolve({
        requests: j.requests,
        seconds,
        rps: seconds > 0 ? j.requests / seconds : 0,
        bytes: j.bytes,
        p50Ms: j.p50_us / 1000,
        p90Ms: j.p90_us / 1000,
        p99Ms: j.p99_us / 1000,
        p999Ms: j.p999_us / 1000,
        maxMs: j.max_us / 1000,
        meanMs: j.mean_us / 1000,
        non2xx: j.status,
        errors: { connect: j.connect, read: j.read, write: j.write, timeout: j.timeout },
        socketErrors,
        args,
      });
    });
  });
}

module.exports = { ensureWrk, wrkVersion, writeLuaScript, runWrk };
