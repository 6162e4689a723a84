'use strict';
// Proof with a real proxy: nginx in front of two server instances (separate
// processes: the standalone TunnelServer and a Runner app under
// nativeExposure), continuous load through nginx for the whole test (Runner's
// createHttpClient in several concurrent loops, and wrk), the instances
// restarted one after the other (SIGTERM -> drain -> exit -> start again ->
// health probe answers -> next). Zero failed calls in both, and no call run
// twice (a call cut off by a broken drain would be retried by nginx on the
// other instance: run twice, not failed).
//
// Needs nginx (`apt-get install -y nginx`; .ci/run installs it) and wrk.
// RUNNER_NATIVE_SKIP_NGINX=1 skips it on a machine without nginx (local use only).
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { createHttpClient, Serializer } = require('@bluelibs/runner');
const { rawRequest, sleep, TOKEN } = require('./helpers');
const { freePort } = require('./helpers/scripts');

const INSTANCE = path.join(__dirname, 'fixtures', 'instance.js');
const CALLERS = 8;
const WRK_CONNECTIONS = 16;

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

const NGINX = which('nginx');
const WRK = which('wrk');
const skip =
  !NGINX && process.env.RUNNER_NATIVE_SKIP_NGINX === '1' ? 'nginx not installed (RUNNER_NATIVE_SKIP_NGINX=1)' : false;

/** The upstream configuration the README's "Behind nginx" shows. */
function nginxConf(dir, listenPort, upstreamPorts) {
  const servers = upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n');
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
${process.getuid && process.getuid() === 0 ? 'user root;' : ''}
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  upstream runner {
${servers}
    keepalive 32;
    keepalive_timeout 4s;
  }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://runner;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout non_idempotent;
    }
  }
}
`;
}

const WRK_SCRIPT = `
wrk.method = "POST"
wrk.body = '{"input":{"a":1,"b":2}}'
wrk.headers["content-type"] = "application/json"
wrk.headers["x-runner-token"] = "${TOKEN}"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0; wrong = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1
  elseif not string.find(body, '"sum":3', 1, true) then wrong = wrong + 1 end
end
function done(summary, latency, requests)
  local n, w = 0, 0
  for _, t in ipairs(threads) do n = n + t:get("non2xx"); w = w + t:get("wrong") end
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"non2xx":%d,"wrong":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\\n',
    summary.requests, n, w, e.connect, e.read, e.write, e.timeout))
end
`;

/** Starts fixtures/instance.js; resolves once it prints its port. */
function startInstance(args) {
  const child = spawn(process.execPath, [INSTANCE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUNNER_TOKEN: TOKEN },
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, err })));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, exited, port: JSON.parse(out.split('\n')[0]).port });
    });
    exited.then(({ code }) => reject(new Error(`instance exited (${code}) before listening: ${err}`)));
  });
}

async function waitFor(what, ms, check) {
  const t = Date.now();
  for (;;) {
    try {
      if (await check()) return;
    } catch {}
    if (Date.now() - t > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}

const healthy = (port) => async () =>
  (await rawRequest({ port }, { method: 'GET', path: '/healthz', headers: [], timeoutMs: 1000 })).status === 200;

describe('behind nginx: rolling restarts under load', { skip }, () => {
  it('zero failed calls (Runner client and wrk), none run twice, while both instances restart', async (t) => {
    assert.ok(
      NGINX,
      'nginx is needed for this test: apt-get install -y nginx (.ci/run installs it; RUNNER_NATIVE_SKIP_NGINX=1 skips it locally)',
    );
    assert.ok(WRK, 'wrk is needed for this test: apt-get install -y wrk (.ci/run installs it)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-native-nginx-'));
    fs.chmodSync(dir, 0o755);
    const stoppers = [];
    let generation = 0;
    const recordFiles = [];
    const start = async (name, mode, port = 0) => {
      const file = path.join(dir, `${name}-${++generation}.json`);
      recordFiles.push(file);
      const inst = await startInstance([...mode, '--port', String(port), '--record', file]);
      stoppers.push(() => inst.child.exitCode === null && inst.child.kill('SIGKILL'));
      return inst;
    };
    try {
      const instances = {
        standalone: await start('standalone', []),
        runner: await start('runner', ['--runner']),
      };
      const modes = { standalone: [], runner: ['--runner'] };
      const nginxPort = await freePort();
      fs.writeFileSync(
        path.join(dir, 'nginx.conf'),
        nginxConf(
          dir,
          nginxPort,
          Object.values(instances).map((i) => i.port),
        ),
      );
      const nginx = spawn(NGINX, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let nginxErr = '';
      nginx.stderr.on('data', (d) => (nginxErr += d));
      stoppers.push(() => nginx.exitCode === null && nginx.kill('SIGKILL'));
      await waitFor(`nginx on ${nginxPort} (${nginxErr})`, 5000, healthy(nginxPort));

      // Load for the whole test: wrk, and Runner's client in concurrent loops.
      fs.writeFileSync(path.join(dir, 'load.lua'), WRK_SCRIPT);
      const wrk = spawn(
        WRK,
        [
          '-t1',
          `-c${WRK_CONNECTIONS}`,
          '-d120s',
          '-s',
          path.join(dir, 'load.lua'),
          `http://127.0.0.1:${nginxPort}/__runner/task/prod.add`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      stoppers.push(() => wrk.exitCode === null && wrk.kill('SIGKILL'));
      let wrkOut = '';
      wrk.stdout.on('data', (d) => (wrkOut += d));
      wrk.stderr.on('data', (d) => (wrkOut += d));
      const wrkDone = new Promise((resolve) => wrk.once('exit', resolve));

      const client = createHttpClient({
        baseUrl: `http://127.0.0.1:${nginxPort}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
      });
      let stopping = false;
      const failures = [];
      const answered = [];
      const pids = new Set();
      const caller = async (n) => {
        for (let i = 0; !stopping; i++) {
          const id = `${n}.${i}`;
          try {
            const out = await client.task('prod.record', { id, ms: 5 + ((i * 37 + n * 11) % 100) });
            if (out && out.id === id) {
              answered.push(id);
              pids.add(out.pid);
            } else failures.push(`${id}: wrong answer ${JSON.stringify(out)}`);
          } catch (err) {
            failures.push(`${id}: ${err && err.message}`);
          }
        }
      };
      const callers = Array.from({ length: CALLERS }, (_, n) => caller(n));

      await sleep(1500);
      const restarts = [];
      for (const name of Object.keys(instances)) {
        const old = instances[name];
        const t0 = Date.now();
        old.child.kill('SIGTERM');
        const { code, signal, err } = await old.exited;
        assert.equal(code, 0, `${name} exits by itself after draining (code ${code}, signal ${signal}): ${err}`);
        const drained = Date.now() - t0;
        instances[name] = await start(name, modes[name], old.port);
        await waitFor(`${name} healthy again`, 5000, healthy(old.port));
        restarts.push(`${name}: drained and exited in ${drained} ms, serving again after ${Date.now() - t0} ms`);
        await sleep(500);
      }
      await sleep(1000);

      stopping = true;
      await Promise.all(callers);
      wrk.kill('SIGINT');
      await wrkDone;
      nginx.kill('SIGQUIT');
      for (const inst of Object.values(instances)) {
        inst.child.kill('SIGTERM');
        await inst.exited;
      }

      const line = wrkOut.split('\n').find((l) => l.startsWith('WRK_RESULT '));
      assert.ok(line, `wrk reported its result:\n${wrkOut}`);
      const w = JSON.parse(line.slice('WRK_RESULT '.length));
      const log = fs.existsSync(path.join(dir, 'error.log'))
        ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8')
        : '';
      const count = (re) => log.split('\n').filter((l) => re.test(l)).length;
      t.diagnostic(restarts.join('; '));
      t.diagnostic(`wrk: ${line.slice('WRK_RESULT '.length)}`);
      t.diagnostic(`client: ${answered.length} calls answered, ${failures.length} failed, ${pids.size} processes`);
      t.diagnostic(
        `nginx retried past: ${count(/Connection refused/)} refused connections, ` +
          `${count(/prematurely closed|reset by peer/)} keep-alive connections closed under a request it had just sent`,
      );

      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} client calls failed`);
      assert.deepEqual(
        { non2xx: w.non2xx, wrong: w.wrong, connect: w.connect, read: w.read, write: w.write, timeout: w.timeout },
        { non2xx: 0, wrong: 0, connect: 0, read: 0, write: 0, timeout: 0 },
        `wrk saw failures: ${line}`,
      );
      assert.ok(w.requests > 1000, `wrk made ${w.requests} requests`);
      assert.ok(answered.length > 200, `the client made ${answered.length} calls`);
      assert.equal(pids.size, 4, 'calls were served by both instances before and after their restarts');

      const ran = recordFiles.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
      const seen = new Map();
      for (const id of ran) seen.set(id, (seen.get(id) || 0) + 1);
      const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      assert.deepEqual(twice.slice(0, 5), [], `${twice.length} calls ran twice (cut off, then retried by nginx)`);
      const missing = answered.filter((id) => !seen.has(id));
      assert.deepEqual(missing.slice(0, 5), [], 'every answered call ran');
    } finally {
      for (const stop of stoppers) stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
