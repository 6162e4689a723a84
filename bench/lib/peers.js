'use strict';
// The peers under test, each a child process (bench/servers/<name>.js) that announces its port
// on stdout (see common.js announce/skip), so its CPU time and memory can be read from /proc.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT, sleep } = require('./common');
const { onLines } = require('./lines');

const SERVERS_DIR = path.join(__dirname, '..', 'servers');
const allProcs = new Set();
let startCount = 0;

class ServerProc {
  /** `logDir`: where its stderr log goes; `log`: the harness's progress output; `verbose`: echo its output. */
  constructor(name, { logDir, log, verbose = false }) {
    allProcs.add(this);
    this.name = name;
    this.file = path.join(SERVERS_DIR, `${name}.js`);
    this.logDir = logDir;
    this.log = log;
    this.verbose = verbose;
    this.state = 'new';
    this.tail = '';
  }

  start({ timeoutMs = 30000, exposeGc = false } = {}) {
    return new Promise((resolve) => {
      // stderr goes to a file, not a pipe: Node makes its child pipes non-blocking, and a
      // native server that eprintln!s under load (brahma does, once per dropped connection)
      // panics with EAGAIN and aborts. A file never blocks.
      this.errLog = path.join(this.logDir, `${this.name}-${++startCount}.stderr.log`);
      const errFd = fs.openSync(this.errLog, 'w');
      const child = spawn(process.execPath, [...(exposeGc ? ['--expose-gc'] : []), this.file], {
        stdio: ['pipe', 'pipe', errFd],
        env: { ...process.env, NODE_ENV: 'production' },
        cwd: ROOT,
      });
      fs.closeSync(errFd);
      this.child = child;
      let settled = false;
      const settle = (state, extra = {}) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        Object.assign(this, extra);
        this.state = state;
        resolve(this);
      };
      const keep = (d) => {
        this.tail = (this.tail + d).slice(-4000);
        if (this.verbose) process.stderr.write(`[${this.name}] ${d}`);
      };
      onLines(child.stdout, (raw) => {
        const line = raw.trim();
        let msg = null;
        if (line.startsWith('{')) {
          try {
            msg = JSON.parse(line);
          } catch {}
        }
        if (msg && 'gc' in msg && this.onGc) this.onGc(msg);
        else if (msg && msg.skip) settle('skipped', { reason: msg.skip });
        else if (msg && msg.ready && msg.port)
          settle('ready', { port: msg.port, pid: msg.pid || child.pid, workers: msg.workers });
        else keep(line + '\n');
      });
      child.stdin.on('error', () => {});
      child.on('exit', (code, signal) => {
        this.exited = true;
        this.tail = (this.tail + this.stderrTail()).slice(-4000);
        if (this.state === 'ready' && !this.stopping) {
          this.state = 'crashed';
          this.reason = `exited during the run (code ${code}, signal ${signal}): ${this.tail.trim().slice(-600)}`;
          this.log(`!! ${this.name} ${this.reason}`);
        }
        settle('failed', {
          reason: `exited before ready (code ${code}, signal ${signal}): ${this.tail.trim().slice(-600)}`,
        });
      });
      const timer = setTimeout(() => {
        settle('failed', { reason: `not ready after ${timeoutMs} ms: ${this.tail.trim().slice(-600)}` });
        this.stop();
      }, timeoutMs);
    });
  }

  /** Last lines of the server's stderr log, minus the per-dropped-connection noise. */
  stderrTail() {
    try {
      const text = fs.readFileSync(this.errLog, 'utf8');
      const lines = text.split('\n').filter((l) => l && !/^Error serving connection: hyper::Error/.test(l));
      return lines.slice(-30).join('\n');
    } catch {
      return '';
    }
  }

  /** Ask the server to run a full GC (needs exposeGc); resolves after its reply or 2 s. */
  gc() {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.onGc = null;
        resolve(false);
      }, 2000);
      this.onGc = (msg) => {
        clearTimeout(t);
        this.onGc = null;
        resolve(!!msg.gc);
      };
      try {
        this.child.stdin.write('gc\n');
      } catch {
        clearTimeout(t);
        resolve(false);
      }
    });
  }

  get alive() {
    return this.state === 'ready' && !this.exited;
  }

  async stop() {
    if (!this.child || this.exited) return;
    this.stopping = true;
    const pid = this.pid;
    try {
      this.child.stdin.end();
    } catch {}
    const deadline = Date.now() + 3000;
    while (!this.exited && Date.now() < deadline) await sleep(50);
    if (!this.exited) {
      try {
        this.child.kill('SIGKILL');
      } catch {}
      while (!this.exited) await sleep(20);
    }
    // a wrapper (rust.js) reports its grandchild's pid: make sure it is gone too
    if (pid && pid !== this.child.pid) {
      try {
        process.kill(pid, 0);
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

/**
 * Starts the named peers one after another (`opts`: ServerProc's); `standIn` maps a peer that
 * could not start to one that replaces it (smoke runs). Resolves every ServerProc, ready or not.
 */
async function startServers(names, { standIn = {}, ...opts }) {
  const { log, verbose } = opts;
  const procs = [];
  for (const name of names) {
    const p = await new ServerProc(name, opts).start();
    if (p.state === 'ready')
      log(
        `   ${name.padEnd(15)} ready on :${p.port} (pid ${p.pid}${p.workers ? `, ${p.workers} HTTP worker(s)` : ''})${verbose ? '  stderr: ' + p.errLog : ''}`,
      );
    else log(`   ${name.padEnd(15)} ${p.state.toUpperCase()}: ${p.reason}`);
    if (p.state !== 'ready' && standIn[name] && !names.includes(standIn[name])) {
      const alt = standIn[name];
      log(`   (smoke) ${name} unavailable, using ${alt} instead`);
      procs.push(p);
      const q = await new ServerProc(alt, opts).start();
      if (q.state === 'ready') log(`   ${alt.padEnd(15)} ready on :${q.port} (pid ${q.pid})`);
      else log(`   ${alt.padEnd(15)} ${q.state.toUpperCase()}: ${q.reason}`);
      procs.push(q);
      continue;
    }
    procs.push(p);
  }
  return procs;
}

/** Stops every peer started so far. */
async function stopAll() {
  for (const p of allProcs) await p.stop();
}

module.exports = { ServerProc, startServers, stopAll };
