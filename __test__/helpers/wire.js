'use strict';
// Wire-level differential harness: the same raw bytes go to this project's server, to Node's
// `http` server (llhttp, default settings) and to a plain hyper 1 server
// (`examples/hyper_peer.rs`), and for each we learn which requests it ran (a handler saw the
// request and its whole body) and what it answered.
//
// One exchange: connect, write the parts (a pause between parts, so the server reads them
// apart), wait until the server closes or sends nothing for `quietMs`, then half-close and
// wait for the server to close. A connection that is still open `endWaitMs` after the
// half-close is reported as `hung`.

const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { once } = require('node:events');

const ROOT = path.join(__dirname, '..', '..');
/** Task ids the cases address; each server runs any of them. */
const TASK_IDS = ['a', 'b', 'c', 'd'];

const { sleep } = require('./raw-client');

// ---- the peers ----------------------------------------------------------------------------

/** Node's own server: records each request whose body ended, per client port. */
async function startNodePeer() {
  const log = new Map();
  const server = http.createServer((req, res) => {
    const port = req.socket.remotePort;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (!log.has(port)) log.set(port, []);
      log.get(port).push({
        method: req.method,
        target: req.url,
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks),
      });
      res.end('ran');
    });
    req.on('error', () => {});
  });
  // A new connection from a port starts that port's record afresh (ports are reused).
  server.on('connection', (socket) => log.delete(socket.remotePort));
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    name: 'node',
    port: server.address().port,
    async ran(clientPort) {
      const records = log.get(clientPort) ?? [];
      log.delete(clientPort);
      return records;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The hyper peer, built by cargo (a dev-only example binary). */
async function startHyperPeer() {
  const built = spawnSync('cargo', ['build', '--quiet', '--example', 'hyper_peer'], { cwd: ROOT, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('cargo build --example hyper_peer failed');
  const child = spawn(path.join(ROOT, 'target', 'debug', 'examples', 'hyper_peer'), [], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`hyper_peer exited (${code})`)));
    child.stdout.on('data', (d) => {
      text += d;
      const m = /listening (\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return {
    name: 'hyper',
    port,
    ran: (clientPort) =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/__peer/log?port=${clientPort}`, agent }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
              const records = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              resolve(records.map((r) => ({ ...r, body: Buffer.from(r.body, 'hex') })));
            });
          })
          .on('error', reject);
      }),
    async close() {
      agent.destroy();
      child.removeAllListeners('exit');
      child.kill();
      await once(child, 'exit').catch(() => {});
    },
  };
}

/**
 * This project's server, `lanes` instances (one case at a time on each, so what a handler
 * records belongs to the case running on that lane).
 */
async function startOurs(lanes, options = {}) {
  const { TunnelServer } = require(ROOT);
  const workers = Number(process.env.RUNNER_NATIVE_TEST_WORKERS) || undefined;
  const servers = [];
  for (let i = 0; i < lanes; i++) {
    const log = [];
    // Handlers still running, and when one last started or ended: a handler can run after its
    // client has gone (its answer is then dropped), and what it records must not be taken for
    // the next case on this lane.
    let active = 0;
    let lastActivity = 0;
    const server = new TunnelServer({
      port: 0,
      host: '127.0.0.1',
      auth: { allowAnonymous: true },
      logger: { error() {}, warn() {} },
      ...(workers ? { workerThreads: workers } : {}),
      ...options,
    });
    for (const id of TASK_IDS) {
      server.registerTask(id, async (input, ctx) => {
        active++;
        lastActivity = Date.now();
        try {
          const chunks = [];
          for await (const c of ctx.req) chunks.push(c);
          log.push({
            id,
            input: JSON.stringify(input === undefined ? { undefined: true } : input),
            raw: Buffer.concat(chunks),
          });
          return 'ran';
        } finally {
          active--;
          lastActivity = Date.now();
        }
      });
    }
    const { port } = await server.listen();
    servers.push({
      name: 'ours',
      port,
      async ran() {
        const giveUp = Date.now() + 2000;
        while ((active > 0 || Date.now() - lastActivity < 20) && Date.now() < giveUp) await sleep(5);
        return log.splice(0);
      },
      close: () => server.close(),
    });
  }
  return servers;
}

// ---- one exchange -------------------------------------------------------------------------

/**
 * Sends `parts` (Buffers) on a fresh connection to `port`; resolves with the client port,
 * the bytes answered and how the connection ended.
 */
function exchange(port, parts, { quietMs = 60, endWaitMs = 1500, gapMs = 3, halfClose = false } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const received = [];
    let closedByServer = false;
    let sentAll = false;
    let halfClosed = false;
    let quiet = null;
    let giveUp = null;
    let clientPort = 0;
    const finish = (how) => {
      clearTimeout(quiet);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ clientPort, answer: Buffer.concat(received), end: how });
    };
    const closeOurSide = () => {
      if (halfClosed) return;
      halfClosed = true;
      socket.end();
      giveUp = setTimeout(() => finish('hung'), endWaitMs);
    };
    const armQuiet = () => {
      clearTimeout(quiet);
      if (sentAll && !halfClosed) quiet = setTimeout(closeOurSide, quietMs);
    };
    socket.on('data', (d) => {
      received.push(d);
      armQuiet();
    });
    socket.on('end', () => {
      closedByServer = true;
      finish(halfClosed ? 'closed-after-half-close' : 'closed');
    });
    socket.on('error', () => finish(closedByServer ? 'closed' : halfClosed ? 'reset-after-half-close' : 'reset'));
    socket.on('connect', async () => {
      clientPort = socket.localPort;
      for (let i = 0; i < parts.length; i++) {
        if (socket.destroyed) return;
        socket.write(parts[i]);
        if (i < parts.length - 1) await sleep(gapMs);
      }
      sentAll = true;
      if (halfClose) closeOurSide();
      else armQuiet();
    });
  });
}

/** Splits the answer bytes into responses: [{ status, headers: {name: value} }]. */
function parseAnswers(bytes) {
  const answers = [];
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) {
      if (rest.length) answers.push({ status: 'garbage', text: rest.toString('latin1').slice(0, 80) });
      return answers;
    }
    const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
    rest = rest.subarray(end + 4);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) {
      answers.push({ status: 'garbage', text: lines[0].slice(0, 80) });
      return answers;
    }
    const headers = {};
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    const status = Number(m[1]);
    answers.push({ status, headers });
    if (status < 200) continue;
    if (headers['content-length'] !== undefined) {
      rest = rest.subarray(Number(headers['content-length']));
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const last = rest.indexOf('0\r\n\r\n');
      rest = last < 0 ? Buffer.alloc(0) : rest.subarray(last + 5);
    } else if (status !== 204 && status !== 304) {
      return answers; // body until the connection closed
    }
  }
}

/**
 * The status of the HTTP layer's refusal that ended the exchange (the last answer, when it is a
 * bare 4xx with `connection: close` and no content type), or null when there was none.
 */
function refusalOf(result) {
  const last = result.parsed[result.parsed.length - 1];
  if (!last || typeof last.status !== 'number' || last.status < 400) return null;
  const closes = /close/i.test(last.headers.connection ?? '');
  return closes && last.headers['content-type'] === undefined ? last.status : null;
}

/**
 * What an answer says at the level the parsers decide: a refusal by the HTTP layer (its status;
 * such an answer carries `connection: close` and nothing else), an interim 100, or `H` for an
 * answer a request handler wrote (whatever its status).
 */
function shapeOf(answer) {
  if (typeof answer.status !== 'number') return 'garbage';
  if (answer.status < 200) return answer.status;
  const names = Object.keys(answer.headers);
  const bare = names.length === 1 && names[0] === 'connection' && /^close$/i.test(answer.headers.connection);
  return bare ? answer.status : 'H';
}

// ---- comparing what ran -------------------------------------------------------------------

/** The task input this project's server derives from a body it parses as JSON. */
function jsonInputOf(body) {
  if (body.length === 0) return JSON.stringify({ undefined: true });
  try {
    const value = JSON.parse(body.toString('utf8'));
    const input =
      value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, 'input')
        ? value.input
        : value;
    return JSON.stringify(input === undefined ? { undefined: true } : input);
  } catch {
    return null;
  }
}

/** The task a target names, resolved as Runner's exposure resolves it (WHATWG URL). */
function taskIdOf(target) {
  if (typeof target !== 'string') return null;
  let pathname;
  try {
    pathname = new URL(target, 'http://localhost').pathname;
  } catch {
    return null;
  }
  // Empty segments are dropped, as Runner's router drops them.
  const segments = pathname.split('/').filter(Boolean);
  if (segments[0] !== '__runner' || segments[1] !== 'task' || segments.length < 3) return null;
  try {
    return decodeURIComponent(segments.slice(2).join('/'));
  } catch {
    return null;
  }
}

/** Whether a request this server ran is the one a peer ran. */
function sameCall(ours, theirs) {
  if (theirs.method !== 'POST' || taskIdOf(theirs.target) !== ours.id) return false;
  if (ours.raw.length > 0) return ours.raw.equals(theirs.body);
  // A JSON call is known here only by the input it got, so it is compared through the input
  // the peer's body gives (`{"input":2}` and `2` look alike; their framing does not).
  return jsonInputOf(theirs.body) === ours.input;
}

/** Whether every call in `ours` was run by the peer too, in the same order. */
function isSubsequence(ours, theirs) {
  let j = 0;
  for (const call of ours) {
    while (j < theirs.length && !sameCall(call, theirs[j])) j++;
    if (j === theirs.length) return false;
    j++;
  }
  return true;
}

const describeRan = (records) =>
  records.map((r) => `${r.method ? `${r.method} ${r.target}` : r.id} [${(r.body ?? r.raw).length}B]`);

/**
 * Starts every server; `run(parts, opts)` sends the case to all three and reports, per
 * server, what ran, the answers' statuses and how the connection ended.
 */
async function startWirePeers({ lanes = 1, ours: oursOptions } = {}) {
  const [node, hyper, ours] = await Promise.all([startNodePeer(), startHyperPeer(), startOurs(lanes, oursOptions)]);
  const free = [...ours];
  const waiting = [];
  const takeLane = () => (free.length ? Promise.resolve(free.pop()) : new Promise((r) => waiting.push(r)));
  const giveLane = (lane) => (waiting.length ? waiting.shift()(lane) : free.push(lane));

  async function one(peer, port, parts, { halfClose, ...opts }) {
    // `halfClose: 'ours'`: only this server's client ends its side at once; the peers get the
    // same bytes and the end after the quiet period, so what they run does not depend on how
    // far they got before the end arrived (they may run more, never less).
    opts.halfClose = halfClose === 'ours' ? peer.name === 'ours' : halfClose;
    const ex = await exchange(port, parts, opts);
    await sleep(5); // a handler that ran as the connection closed has recorded by now
    const ran = await peer.ran(ex.clientPort);
    const parsed = parseAnswers(ex.answer);
    return { ran, parsed, answers: parsed.map((a) => a.status), shape: parsed.map(shapeOf), end: ex.end };
  }

  return {
    async run(parts, opts = {}) {
      const list = (Array.isArray(parts) ? parts : [parts]).map((p) =>
        Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1'),
      );
      const lane = await takeLane();
      try {
        const [n, h, o] = await Promise.all([
          one(node, node.port, list, opts),
          one(hyper, hyper.port, list, opts),
          one(lane, lane.port, list, opts),
        ]);
        return { node: n, hyper: h, ours: o };
      } finally {
        giveLane(lane);
      }
    },
    async close() {
      await Promise.all([node.close(), hyper.close(), ...ours.map((s) => s.close())]);
    },
  };
}

/**
 * The differential rule: what this server ran must be, in order, what at least one peer ran
 * (it may refuse more than they do, never run what both refused or split the bytes into
 * requests that neither of them saw).
 */
function checkRan(result) {
  const okNode = isSubsequence(result.ours.ran, result.node.ran);
  const okHyper = isSubsequence(result.ours.ran, result.hyper.ran);
  return okNode || okHyper;
}

function summary(result) {
  const line = (name, r) =>
    `${name.padEnd(5)} ran ${JSON.stringify(describeRan(r.ran))} answered ${JSON.stringify(r.answers)} (${JSON.stringify(r.shape)}) ${r.end}`;
  return [line('ours', result.ours), line('node', result.node), line('hyper', result.hyper)].join('\n');
}

module.exports = { startWirePeers, checkRan, refusalOf, summary };
