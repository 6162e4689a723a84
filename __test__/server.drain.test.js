'use strict';
// Graceful drain over real sockets: close() stops accepting at once, closes
// idle keep-alive connections at once, answers what is in flight (the last
// answer of a busy connection with `connection: close`, pipelined requests
// already read included), and after closeGraceMs aborts what is left.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const {
  loadNative,
  silentLogger,
  buildRequest,
  ResponseParser,
  taskReq,
  deferred,
  sleep,
  TOKEN,
} = require('./helpers');

const newServer = (opts = {}) => {
  const { TunnelServer } = loadNative();
  return new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: TOKEN }, logger: silentLogger(), ...opts });
};

/** A keep-alive connection that reads answers one after another and notes when the server closes it. */
class Conn {
  constructor(port) {
    this.socket = net.connect(port, '127.0.0.1');
    this.parsers = [];
    this.answers = [];
    this.waiters = [];
    this.ended = deferred();
    this.buf = Buffer.alloc(0);
    this.socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this._parse();
    });
    this.socket.on('error', () => {});
    this.socket.on('end', () => this.ended.resolve('end'));
    this.socket.on('close', () => this.ended.resolve('close'));
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  _parse() {
    while (this.buf.length > 0 && this.parsers.length > 0) {
      const parser = this.parsers[0];
      parser.push(this.buf);
      this.buf = parser.buf;
      parser.buf = Buffer.alloc(0);
      if (!parser.done) return;
      this.parsers.shift();
      this.answers.push(parser.result());
      const waiter = this.waiters.shift();
      if (waiter) waiter();
    }
  }

  /** Sends requests (one write); each gets a parser for its answer. */
  send(...specs) {
    for (const spec of specs) this.parsers.push(new ResponseParser(spec.method ?? 'POST'));
    this.socket.write(Buffer.concat(specs.map((s) => buildRequest(s))));
  }

  /** The n-th answer on this connection (0-based), once it is whole. */
  async answer(n, ms = 10000) {
    const t = Date.now();
    while (this.answers.length <= n) {
      if (Date.now() - t > ms) throw new Error(`no answer ${n} within ${ms} ms`);
      await Promise.race([new Promise((r) => this.waiters.push(r)), this.ended.promise, sleep(50)]);
      if (this.socket.destroyed && this.answers.length <= n) throw new Error(`closed before answer ${n}`);
    }
    return this.answers[n];
  }

  destroy() {
    this.socket.destroy();
  }
}

const ping = () => taskReq('drain.ping', '');
const wait = () => taskReq('drain.wait', '');
const health = (path = '/healthz') => ({ method: 'GET', path, headers: [] });

/** Whether the event happens within ms (resolves to false otherwise). */
const within = (promise, ms) => Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);

/** A server whose `drain.wait` calls wait until `release()`; `started` resolves with the first such call. */
async function serverWithWaitingCalls(opts = {}) {
  const gate = deferred();
  const started = deferred();
  const signals = [];
  const server = newServer(opts);
  server.registerTask('drain.ping', async () => 'pong');
  server.registerTask('drain.wait', async (_input, ctx) => {
    signals.push(ctx.signal);
    started.resolve();
    await gate.promise;
    return 'waited';
  });
  const { port } = await server.listen();
  return { server, port, started: started.promise, release: () => gate.resolve(), signals };
}

const connectOutcome = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code));
  });

describe('graceful drain on close()', () => {
  it('an idle keep-alive connection is closed at once, while a busy one still drains', async () => {
    const { server, port, started, release } = await serverWithWaitingCalls();
    const idle = new Conn(port);
    const busy = new Conn(port);
    try {
      idle.send(ping());
      assert.equal((await idle.answer(0)).headers.connection, 'keep-alive');
      busy.send(wait());
      await started;
      let closed = false;
      const closing = server.close().then(() => (closed = true));
      assert.ok(await within(idle.ended.promise, 500), 'the idle connection is closed within 500 ms');
      assert.equal(closed, false, 'close() still waits for the busy connection');
      release();
      const a = await busy.answer(0);
      assert.equal(a.status, 200);
      await closing;
    } finally {
      release();
      idle.destroy();
      busy.destroy();
      await server.close();
    }
  });

  it('a busy connection gets its answer with connection: close, then the server closes it', async () => {
    const { server, port, started, release } = await serverWithWaitingCalls();
    const busy = new Conn(port);
    try {
      busy.send(wait());
      await started;
      const closing = server.close();
      await sleep(100);
      release();
      const a = await busy.answer(0);
      assert.equal(a.status, 200);
      assert.deepEqual(a.json(), { ok: true, result: 'waited' });
      assert.equal(a.headers.connection, 'close');
      assert.ok(await within(busy.ended.promise, 2000), 'closed after the answer');
      await closing;
    } finally {
      release();
      busy.destroy();
      await server.close();
    }
  });

  it('new connections are refused as soon as close() is called', async () => {
    const { server, port, started, release } = await serverWithWaitingCalls();
    const busy = new Conn(port);
    try {
      busy.send(wait());
      await started;
      assert.equal(await connectOutcome(port), 'connected');
      const closing = server.close();
      let outcome;
      for (let i = 0; i < 50 && outcome !== 'ECONNREFUSED'; i++) {
        outcome = await connectOutcome(port);
        if (outcome !== 'ECONNREFUSED') await sleep(10);
      }
      assert.equal(outcome, 'ECONNREFUSED', 'refused while the busy call is still running');
      release();
      assert.equal((await busy.answer(0)).status, 200);
      await closing;
    } finally {
      release();
      busy.destroy();
      await server.close();
    }
  });

  it('pipelined requests already read are answered, the last one with connection: close', async () => {
    const { server, port, started, release } = await serverWithWaitingCalls({ health: { path: '/healthz' } });
    const conn = new Conn(port);
    try {
      conn.send(wait(), ping(), health());
      await started;
      const closing = server.close();
      await sleep(100);
      release();
      const [first, second, third] = [await conn.answer(0), await conn.answer(1), await conn.answer(2)];
      assert.deepEqual(
        [first.status, first.json().result, first.headers.connection],
        [200, 'waited', 'keep-alive'],
        'more was read behind it: the connection goes on',
      );
      assert.deepEqual([second.status, second.json().result, second.headers.connection], [200, 'pong', 'keep-alive']);
      assert.equal(third.status, 503, 'the health probe says draining');
      assert.deepEqual(third.json(), { ok: false, status: 'draining' });
      assert.equal(third.headers.connection, 'close');
      assert.ok(await within(conn.ended.promise, 2000), 'closed after the last answer');
      await closing;
    } finally {
      release();
      conn.destroy();
      await server.close();
    }
  });

  it('close() while JS handlers are pending resolves after they have answered', async () => {
    const server = newServer();
    server.registerTask('drain.sleep', async (ms) => {
      await sleep(ms);
      return ms;
    });
    const { port } = await server.listen();
    const conns = Array.from({ length: 8 }, () => new Conn(port));
    try {
      await Promise.all(conns.map((c) => c.connected));
      conns.forEach((c, i) => c.send(taskReq('drain.sleep', JSON.stringify({ input: 300 + i * 20 }))));
      await sleep(50);
      const t0 = Date.now();
      await server.close();
      const took = Date.now() - t0;
      assert.ok(took >= 250, `close() waited for the handlers (${took} ms)`);
      const answers = await Promise.all(conns.map((c) => c.answer(0, 100)));
      assert.deepEqual(
        answers.map((a) => [a.status, a.json().result, a.headers.connection]),
        conns.map((_, i) => [200, 300 + i * 20, 'close']),
        'every call was answered before close() resolved',
      );
    } finally {
      conns.forEach((c) => c.destroy());
      await server.close();
    }
  });

  it('after closeGraceMs what is left is aborted (the handler signals fire) and close() resolves', async () => {
    const { server, port, started, release, signals } = await serverWithWaitingCalls({ closeGraceMs: 300 });
    const busy = new Conn(port);
    try {
      busy.send(wait());
      await started;
      const t0 = Date.now();
      await server.close();
      const took = Date.now() - t0;
      assert.ok(took >= 280 && took < 2000, `close() took the grace and little more (${took} ms)`);
      assert.equal(signals.length, 1);
      assert.equal(signals[0].aborted, true, 'the signal fired before close() resolved');
      assert.ok(await within(busy.ended.promise, 1000), 'the connection is closed');
      assert.equal(busy.answers.length, 0, 'no answer after the grace');
    } finally {
      release();
      busy.destroy();
      await server.close();
    }
  });

  it('closeGraceMs: 0 aborts in-flight calls at once', async () => {
    const { server, port, started, release, signals } = await serverWithWaitingCalls({ closeGraceMs: 0 });
    const busy = new Conn(port);
    try {
      busy.send(wait());
      await started;
      const t0 = Date.now();
      await server.close();
      assert.ok(Date.now() - t0 < 1000, 'close() did not wait');
      assert.equal(signals[0].aborted, true);
    } finally {
      release();
      busy.destroy();
      await server.close();
    }
  });
});
