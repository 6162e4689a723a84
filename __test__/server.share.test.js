'use strict';
// `share: true`: TunnelServers in several isolates of one process (the main thread and
// worker_threads) on one native listener. Each scenario runs in a child process of its own,
// so a crash shows as its exit signal and a thread left behind as a process that does not
// exit by itself.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { freePort, scriptDir, scenarioRunner } = require('./helpers/scripts');
const { TOKEN } = require('./helpers');

const ROOT = path.resolve(__dirname, '..');
const dir = scriptDir('share');

const PRELUDE = `
'use strict';
const { Worker } = require('node:worker_threads');
const { once } = require('node:events');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const ROOT = ${JSON.stringify(ROOT)};
const TOKEN = ${JSON.stringify(TOKEN)};
const load = (m) => require(require.resolve(m, { paths: [ROOT] }));
const { TunnelServer } = require(ROOT);

// A sharer's options; \`extra\` changes some of them.
const options = (port, extra = {}) => ({ port, host: '127.0.0.1', share: true, auth: { token: TOKEN }, ...extra });

// A worker sharing \`port\`: 'w.who' answers its threadId, 'w.hold' never answers (and says
// 'holding'), 'w.block' blocks its JS thread on the shared array until told. It reports
// 'listening' (or the error listen() rejected with), answers 'metrics' with its
// metricsText() and 'seen' with the count of access records its onAccess got (with
// \`access\`), closes on anything else.
const SHARER = (port, extra = {}, access = false) => \`
  const { TunnelServer } = require(\${JSON.stringify(ROOT)});
  const { parentPort, threadId, workerData } = require('node:worker_threads');
  let seen = 0;
  const onAccess = (records) => { seen += records.length; };
  const server = new TunnelServer({ port: \${port}, host: '127.0.0.1', share: true,
    auth: { token: \${JSON.stringify(TOKEN)} }, ...\${JSON.stringify(extra)},
    ...(\${access} ? { onAccess } : {}) });
  server.registerTask('w.who', async () => threadId);
  server.registerTask('w.hold', () => { parentPort.postMessage('holding'); return new Promise(() => {}); });
  server.registerTask('w.slow', async () => {
    parentPort.postMessage('slow');
    await new Promise((r) => setTimeout(r, 300));
    return threadId;
  });
  server.registerTask('w.signal', (input, ctx) => {
    parentPort.postMessage('waiting');
    return new Promise((resolve) => ctx.signal.addEventListener('abort', () => {
      parentPort.postMessage('aborted');
      resolve(null);
    }));
  });
  server.registerTask('w.block', async () => {
    parentPort.postMessage('blocking');
    Atomics.wait(new Int32Array(workerData), 0, 0);
    return threadId;
  });
  server.listen().then(
    () => parentPort.postMessage('listening'),
    (e) => parentPort.postMessage({ code: e.code, message: e.message }),
  );
  const onMessage = async (what) => {
    if (what === 'metrics') return parentPort.postMessage(server.metricsText());
    if (what === 'seen') return parentPort.postMessage(seen);
    parentPort.off('message', onMessage);
    await server.close();
    parentPort.postMessage('closed');
  };
  parentPort.on('message', onMessage);
\`;

// Its messages are queued from the start, so none is missed while another worker is awaited.
function startWorker(code, workerData) {
  const w = new Worker(code, { eval: true, workerData });
  w.queued = [];
  w.waiting = [];
  w.on('message', (m) => (w.waiting.length ? w.waiting.shift()(m) : w.queued.push(m)));
  w.exited = once(w, 'exit').then(([c]) => c);
  w.exited.catch(() => {});
  return w;
}
const message = (w) => (w.queued.length ? Promise.resolve(w.queued.shift()) : new Promise((r) => w.waiting.push(r)));

// One call on a connection of its own.
function call(port, id) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/__runner/task/' + id, agent: false,
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body, json: body ? JSON.parse(body) : undefined }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end('{"input":null}');
  });
}
const who = async (port) => {
  const res = await call(port, 'w.who');
  assert.equal(res.status, 200, res.body);
  return res.json.result;
};

// A GET of \`path\` on a connection of its own: its status and body.
function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}
// A counter's value in Prometheus text (without labels).
const counter = (text, name) => Number((text.match(new RegExp('^' + name + ' (\\\\S+)$', 'm')) || [])[1]);

function portIsFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
`;

const runScript = scenarioRunner(dir, PRELUDE, { ms: 60000 });

describe('share: one listener, several isolates', () => {
  it('calls spread over the main thread and two workers; the last close frees the port', () =>
    runScript(`
      const main = new TunnelServer(options(0));
      main.registerTask('w.who', async () => 'main');
      const { port } = await main.listen();
      const a = startWorker(SHARER(port));
      const b = startWorker(SHARER(port));
      assert.equal(await message(a), 'listening');
      assert.equal(await message(b), 'listening');
      const seen = new Set();
      for (let i = 0; i < 30; i++) seen.add(await who(port));
      assert.deepEqual([...seen].sort(), ['main', a.threadId, b.threadId].sort());
      // One sharer leaves: the others keep serving, and it gets nothing more.
      await main.close();
      const after = new Set();
      for (let i = 0; i < 20; i++) after.add(await who(port));
      assert.deepEqual([...after].sort(), [a.threadId, b.threadId].sort());
      assert.equal(await portIsFree(port), false);
      a.postMessage('close');
      assert.equal(await message(a), 'closed');
      assert.equal(await portIsFree(port), false, 'b still listens');
      b.postMessage('close');
      assert.equal(await message(b), 'closed');
      assert.equal(await portIsFree(port), true, 'the last close freed the port');
      await Promise.all([a.terminate(), b.terminate()]);
    `));

  it('metrics: one set of figures for the listener, the calls of every sharer counted, served on after its binder closes', () =>
    runScript(`
      const metrics = { metrics: { path: '/metrics' } };
      const main = new TunnelServer(options(0, metrics));
      main.registerTask('w.who', async () => 'main');
      const { port } = await main.listen();
      const a = startWorker(SHARER(port, metrics));
      assert.equal(await message(a), 'listening');
      const seen = new Set();
      for (let i = 0; i < 20; i++) seen.add(await who(port));
      assert.deepEqual([...seen].sort(), ['main', a.threadId].sort());
      const scraped = await get(port, '/metrics');
      assert.equal(scraped.status, 200);
      assert.equal(counter(scraped.body, 'runner_native_js_calls_total'), 20, scraped.body);
      // Both sharers show the listener's figures.
      a.postMessage('metrics');
      const fromWorker = await message(a);
      assert.equal(counter(fromWorker, 'runner_native_js_calls_total'), 20, fromWorker);
      assert.equal(counter(main.metricsText(), 'runner_native_js_calls_total'), 20);
      assert.equal(main.stats().jsCalls, 20);
      // The sharer that bound it leaves: the listener and its figures go on.
      await main.close();
      for (let i = 0; i < 5; i++) assert.equal(await who(port), a.threadId);
      const later = await get(port, '/metrics');
      assert.equal(later.status, 200);
      assert.equal(counter(later.body, 'runner_native_js_calls_total'), 25, later.body);
      // A sharer whose metrics differ is refused, naming the option.
      const other = new TunnelServer(options(port, { metrics: { path: '/other' } }));
      await assert.rejects(other.listen(), (e) => e.code === 'ERR_SHARE_MISMATCH' && /"metrics"/.test(e.message));
      a.postMessage('close');
      assert.equal(await message(a), 'closed');
      assert.equal(await portIsFree(port), true);
      await a.terminate();
    `));

  it('onAccess: each request delivered once, to one sharer; after one leaves, to the others', () =>
    runScript(`
      const got = [];
      const main = new TunnelServer(options(0, { onAccess: (records) => got.push(...records) }));
      main.registerTask('w.who', async () => 'main');
      const { port } = await main.listen();
      const a = startWorker(SHARER(port, {}, true));
      assert.equal(await message(a), 'listening');
      const seen = new Set();
      for (let i = 0; i < 20; i++) seen.add(await who(port));
      assert.deepEqual([...seen].sort(), ['main', a.threadId].sort(), 'both sharers answered');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const seenByWorker = async () => {
        a.postMessage('seen');
        return message(a);
      };
      let total = 0;
      for (let i = 0; i < 100 && total < 20; i++) {
        await sleep(50);
        total = got.length + (await seenByWorker());
      }
      await sleep(200);
      assert.equal(got.length + (await seenByWorker()), 20, 'one record per request, whichever isolate answered');
      assert.ok(got.every((r) => r.path === '/__runner/task/w.who' && r.status === 200), JSON.stringify(got[0]));
      // A sharer without onAccess is refused, naming it.
      const bare = new TunnelServer(options(port));
      await assert.rejects(bare.listen(), (e) => e.code === 'ERR_SHARE_MISMATCH' && /"onAccess"/.test(e.message));
      // The binder leaves: the next requests' records go to the sharer left.
      const mainHad = got.length;
      const workerHad = await seenByWorker();
      await main.close();
      for (let i = 0; i < 5; i++) assert.equal(await who(port), a.threadId);
      let later = workerHad;
      for (let i = 0; i < 100 && later < workerHad + 5; i++) {
        await sleep(50);
        later = await seenByWorker();
      }
      assert.equal(later, workerHad + 5);
      assert.equal(got.length, mainHad, 'nothing more went to the sharer that left');
      a.postMessage('close');
      assert.equal(await message(a), 'closed');
      await a.terminate();
    `));

  it('a busy isolate gets no new calls while another is free (least busy first)', () =>
    runScript(`
      const first = new TunnelServer(options(0));
      first.registerTask('w.who', async () => 'main');
      const { port } = await first.listen();
      const sab = new SharedArrayBuffer(4);
      const a = startWorker(SHARER(port), sab);
      const b = startWorker(SHARER(port), sab);
      assert.equal(await message(a), 'listening');
      assert.equal(await message(b), 'listening');
      await first.close(); // two workers left
      // Block one worker's JS thread; which one depends on the routing.
      const blocked = call(port, 'w.block');
      const [which] = await Promise.race([message(a).then(() => [a]), message(b).then(() => [b])]);
      const free = which === a ? b : a;
      // Every call now goes to the free one, none waits on the blocked one.
      for (let i = 0; i < 20; i++) assert.equal(await who(port), free.threadId);
      Atomics.store(new Int32Array(sab), 0, 1);
      Atomics.notify(new Int32Array(sab), 0);
      const res = await blocked;
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.result, which.threadId);
      await Promise.all([a.terminate(), b.terminate()]);
    `));

  it('a terminated worker: its call in flight is answered 500, the others keep serving', () =>
    runScript(`
      const main = new TunnelServer(options(0));
      main.registerTask('w.who', async () => 'main');
      const { port } = await main.listen();
      const a = startWorker(SHARER(port));
      assert.equal(await message(a), 'listening');
      // Only the worker has w.hold: the call goes there and waits.
      const held = call(port, 'w.hold');
      assert.equal(await message(a), 'holding');
      await a.terminate();
      const res = await held;
      assert.equal(res.status, 500, res.body);
      assert.equal(res.json.ok, false);
      assert.equal(res.json.error.code, 'INTERNAL_ERROR');
      for (let i = 0; i < 10; i++) assert.equal(await who(port), 'main');
      // Its ids are gone with it.
      assert.equal((await call(port, 'w.hold')).status, 404);
      await main.close();
      assert.equal(await portIsFree(port), true);
    `));

  it('a sharer whose protocol options differ is refused, naming the option', () =>
    runScript(`
      const main = new TunnelServer(options(0));
      const { port } = await main.listen();
      for (const [extra, field] of [
        [{ basePath: '/api' }, 'basePath'],
        [{ auth: { token: 'other' } }, 'auth'],
        [{ cors: { origin: 'https://a.example' } }, 'cors'],
      ]) {
        const other = new TunnelServer(options(port, extra));
        await assert.rejects(other.listen(), (e) => e.code === 'ERR_SHARE_MISMATCH' && e.message.includes('"' + field + '"'));
        const w = startWorker(SHARER(port, extra));
        const m = await message(w);
        assert.equal(m.code, 'ERR_SHARE_MISMATCH');
        assert.ok(m.message.includes('"' + field + '"'), m.message);
        await w.terminate();
      }
      // A server without share cannot take the port either.
      const plain = new TunnelServer({ port, host: '127.0.0.1', auth: { token: TOKEN } });
      await assert.rejects(plain.listen(), (e) => e.code === 'EADDRINUSE');
      await main.close();
    `));

  it('a sharer that closes finishes its call in flight; aborts reach a sharer; late registrations route', () =>
    runScript(`
      const main = new TunnelServer(options(0));
      main.registerTask('w.who', async () => 'main');
      const { port } = await main.listen();
      // Joiners may differ in HTTP threads and in defaults written out.
      const a = startWorker(SHARER(port, { workerThreads: 2, basePath: '__runner/', reusePort: false }));
      assert.equal(await message(a), 'listening');
      // A registration after joining is routed (and the earlier routes stay).
      main.registerTask('late', async () => 'late main');
      assert.equal((await call(port, 'late')).json.result, 'late main');
      // The client goes away: the worker's handler sees its signal abort.
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/__runner/task/w.signal', agent: false,
        headers: { 'x-runner-token': TOKEN, 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end('{"input":null}');
      assert.equal(await message(a), 'waiting');
      req.destroy();
      assert.equal(await message(a), 'aborted');
      // Only the worker has w.slow; it closes while the call runs, and the call still answers.
      const slow = call(port, 'w.slow');
      assert.equal(await message(a), 'slow');
      a.postMessage('close');
      const res = await slow;
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.result, a.threadId);
      assert.equal(await message(a), 'closed');
      // Gone with it: its ids, not the others'.
      assert.equal((await call(port, 'w.slow')).status, 404);
      assert.equal(await who(port), 'main');
      assert.equal((await call(port, 'late')).json.result, 'late main');
      await a.terminate();
      await main.close();
    `));

  it('workers alone share a listener; when they all close the script exits by itself', () =>
    runScript(`
      const { port } = await (async () => {
        const probe = new TunnelServer(options(0));
        const bound = await probe.listen();
        await probe.close();
        return bound;
      })();
      const a = startWorker(SHARER(port));
      assert.equal(await message(a), 'listening');
      const b = startWorker(SHARER(port));
      assert.equal(await message(b), 'listening');
      const seen = new Set();
      for (let i = 0; i < 20; i++) seen.add(await who(port));
      assert.equal(seen.size, 2);
      a.postMessage('close');
      b.postMessage('close');
      await Promise.all([message(a), message(b)]);
      // No terminate: the workers end when their event loops are empty.
      assert.equal(await a.exited, 0);
      assert.equal(await b.exited, 0);
    `));

  it('Runner apps in two workers with nativeExposure http.share; Runner client answered by both', () =>
    runScript(`
      const APP = (port) => \`
        const { parentPort, threadId } = require('node:worker_threads');
        const load = (m) => require(require.resolve(m, { paths: [\${JSON.stringify(ROOT)}] }));
        const { r, run, globals } = load('@bluelibs/runner');
        const { nativeExposure } = require(\${JSON.stringify(ROOT)} + '/runner');
        const who = r.task('rs.who').run(async () => threadId).build();
        const tunnel = r.resource('rs.tunnel').tags([globals.tags.tunnel])
          .init(async () => ({ mode: 'server', transport: 'http', tasks: [who.id], events: [] })).build();
        const app = r.resource('rs.app').register([who, tunnel, nativeExposure.with({
          http: { listen: { port: \${port}, host: '127.0.0.1' }, share: true, auth: { token: \${JSON.stringify(TOKEN)} } },
        })]).build();
        run(app, { logs: { printThreshold: null }, shutdownHooks: false }).then(
          (rt) => {
            parentPort.postMessage('listening');
            parentPort.once('message', async () => { await rt.dispose(); parentPort.postMessage('closed'); });
          },
          (e) => parentPort.postMessage({ code: e.code, message: e.message }),
        );
      \`;
      const probe = new TunnelServer(options(0));
      const { port } = await probe.listen();
      await probe.close();
      const a = startWorker(APP(port));
      assert.equal(await message(a), 'listening');
      const b = startWorker(APP(port));
      assert.equal(await message(b), 'listening');
      const { createHttpClient, Serializer } = load('@bluelibs/runner');
      const client = createHttpClient({ baseUrl: 'http://127.0.0.1:' + port + '/__runner', auth: { token: TOKEN }, serializer: new Serializer() });
      const seen = new Set();
      for (let i = 0; i < 20; i++) seen.add(await client.task('rs.who'));
      assert.deepEqual([...seen].sort(), [a.threadId, b.threadId].sort());
      for (const w of [a, b]) w.postMessage('close');
      await Promise.all([message(a), message(b)]);
      await Promise.all([a.terminate(), b.terminate()]);
    `));
});

describe('examples/shared-workers.js', () => {
  it('serves from two worker threads on one port and exits on SIGINT', async () => {
    const http = require('node:http');
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(ROOT, 'examples', 'shared-workers.js')], {
      env: { ...process.env, WORKERS: '2', PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const until = Date.now() + 30000;
    while (!out.includes('share http://') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes(`2 worker threads share http://127.0.0.1:${port}/__runner`), out);
    const whoami = () =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/__runner/task/shared.whoami',
            agent: false,
            headers: { 'x-runner-token': 'secret', 'content-type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(JSON.parse(body)));
          },
        );
        req.on('error', reject);
        req.end('{"input":{}}');
      });
    const threads = new Set();
    for (let i = 0; i < 10; i++) threads.add((await whoami()).result.threadId);
    assert.equal(threads.size, 2, [...threads].join());
    child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    const end = await exited;
    clearTimeout(t);
    assert.deepEqual(end, { code: 0, signal: null }, 'exits by itself once its workers have closed');
  });
});

describe('serveInWorkers', () => {
  it('starts workers with a handlers module on one port; calls spread; close() ends them', () =>
    runScript(`
      const { serveInWorkers } = require(ROOT);
      const group = await serveInWorkers({
        module: ${JSON.stringify(path.join(__dirname, 'fixtures', 'workers', 'handlers.js'))},
        count: 2,
        options: { host: '127.0.0.1', auth: { token: TOKEN } },
      });
      assert.equal(group.threadIds.length, 2);
      assert.equal(group.url, 'http://127.0.0.1:' + group.port);
      const seen = new Set();
      for (let i = 0; i < 20; i++) {
        const res = await call(group.port, 'sw.who');
        assert.equal(res.status, 200, res.body);
        seen.add(res.json.result);
      }
      assert.deepEqual([...seen].sort(), group.threadIds.slice().sort());
      await group.close();
      assert.equal(await portIsFree(group.port), true);
      // The table form, and a default count of at least one.
      const table = await serveInWorkers({
        module: ${JSON.stringify(path.join(__dirname, 'fixtures', 'workers', 'table.js'))},
        options: { host: '127.0.0.1', auth: { token: TOKEN } },
      });
      assert.ok(table.threadIds.length >= 1);
      assert.ok(table.threadIds.includes((await call(table.port, 'sw.who')).json.result));
      await table.close();
    `));

  it('rejects, leaving no worker behind, when one cannot listen', () =>
    runScript(`
      const { serveInWorkers } = require(ROOT);
      const busy = net.createServer();
      await new Promise((r) => busy.listen(0, '127.0.0.1', r));
      const port = busy.address().port;
      await assert.rejects(
        serveInWorkers({
          module: ${JSON.stringify(path.join(__dirname, 'fixtures', 'workers', 'handlers.js'))},
          count: 2,
          options: { port, host: '127.0.0.1', auth: { token: TOKEN } },
        }),
        (e) => e.code === 'EADDRINUSE',
      );
      await assert.rejects(serveInWorkers({ count: 2 }), /option "module"/);
      busy.close();
    `));
});

describe('share option checking', () => {
  const { TunnelServer } = require(ROOT);
  it('must be a boolean', () => {
    assert.throws(() => new TunnelServer({ share: 1 }), /option "share" must be a boolean/);
    assert.doesNotThrow(() => new TunnelServer({ share: true, metrics: { path: '/m' }, onAccess: () => {} }));
  });
});
