'use strict';
// Load shedding over real sockets: `maxInFlight` (503 + Retry-After from Rust, JS never
// sees the shed call) and `maxConnections` (connections past it closed at once), and both
// recovering by themselves once load falls.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { createHttpClient, Serializer } = require('@bluelibs/runner');
const {
  loadNative,
  silentLogger,
  rawRequest,
  taskReq,
  eventReq,
  discoveryReq,
  deferred,
  sleep,
  TOKEN,
} = require('./helpers');

const OVERLOADED = { ok: false, error: { message: 'Server busy', code: 'OVERLOADED' } };

async function until(check, what, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A server whose `block` task waits on `release`, counting every call JS saw. */
async function blockingServer(options = {}) {
  const { TunnelServer } = loadNative();
  const seen = { block: 0, echo: 0, event: 0 };
  let current = deferred();
  const server = new TunnelServer({ auth: { token: TOKEN }, logger: silentLogger(), ...options });
  server.registerTask('shed.block', async () => {
    seen.block += 1;
    await current.promise;
    return 'done';
  });
  server.registerTask('shed.echo', async (input) => {
    seen.echo += 1;
    return input;
  });
  server.registerEvent('shed.event', async () => {
    seen.event += 1;
  });
  const { url, port } = await server.listen();
  return {
    server,
    url,
    port,
    seen,
    release() {
      current.resolve();
      current = deferred();
    },
    close: () => server.close(),
  };
}

describe('maxInFlight', () => {
  it('call N+1 gets 503 + Retry-After from Rust, JS never sees it; after release calls succeed', async () => {
    const s = await blockingServer({ maxInFlight: 3 });
    try {
      const blocked = [1, 2, 3].map(() => rawRequest(s.url, taskReq('shed.block', '{}')));
      await until(() => s.seen.block === 3, 'three calls in JS');

      const shed = await rawRequest(s.url, taskReq('shed.block', '{}'));
      assert.equal(shed.status, 503);
      assert.equal(shed.headers['retry-after'], '1');
      assert.deepEqual(shed.json(), OVERLOADED);
      assert.equal(shed.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(shed.headers['x-content-type-options'], 'nosniff');
      assert.match(shed.headers['x-runner-request-id'], /^[0-9a-f-]{36}$/);
      assert.equal(shed.headers.connection, 'keep-alive', 'the connection stays usable');
      // Any call is shed while full, an event or a call with a body the server would read.
      const other = await rawRequest(s.url, taskReq('shed.echo', JSON.stringify({ input: 'x'.repeat(5000) })));
      assert.equal(other.status, 503);
      assert.equal((await rawRequest(s.url, eventReq('shed.event', '{"payload":1}'))).status, 503);
      assert.deepEqual(s.seen, { block: 3, echo: 0, event: 0 }, 'JS saw none of the shed calls');

      s.release();
      for (const res of await Promise.all(blocked)) {
        assert.equal(res.status, 200);
        assert.deepEqual(res.json(), { ok: true, result: 'done' });
      }
      const again = await rawRequest(s.url, taskReq('shed.echo', '{"input":7}'));
      assert.equal(again.status, 200);
      assert.deepEqual(again.json(), { ok: true, result: 7 });
      const more = [1, 2, 3].map(() => rawRequest(s.url, taskReq('shed.block', '{}')));
      await until(() => s.seen.block === 6, 'three more calls in JS');
      s.release();
      assert.deepEqual(
        (await Promise.all(more)).map((r) => r.status),
        [200, 200, 200],
      );
    } finally {
      s.release();
      await s.close();
    }
  });

  it('retryAfterSeconds sets Retry-After; the shed call keeps its request id and CORS headers', async () => {
    const s = await blockingServer({ maxInFlight: 1, retryAfterSeconds: 7, cors: { origin: ['https://a.example'] } });
    try {
      const blocked = rawRequest(s.url, taskReq('shed.block', '{}'));
      await until(() => s.seen.block === 1, 'one call in JS');
      const headers = [
        ['x-runner-request-id', 'shed-req-1'],
        ['origin', 'https://a.example'],
      ];
      const shed = await rawRequest(s.url, taskReq('shed.echo', '{}', { headers }));
      assert.equal(shed.status, 503);
      assert.equal(shed.headers['retry-after'], '7');
      assert.equal(shed.headers['x-runner-request-id'], 'shed-req-1');
      assert.equal(shed.headers['access-control-allow-origin'], 'https://a.example');
      s.release();
      assert.equal((await blocked).status, 200);
    } finally {
      s.release();
      await s.close();
    }
  });

  it('a shed call wakes no JS at all: neither auth.validate nor a function CORS origin is asked', async () => {
    const asked = { validate: 0, origin: 0 };
    const s = await blockingServer({
      maxInFlight: 2,
      auth: {
        validate: async () => {
          asked.validate += 1;
          return true;
        },
      },
      cors: {
        origin: (origin) => {
          asked.origin += 1;
          return origin;
        },
      },
    });
    try {
      const spec = () => taskReq('shed.block', '{}', { headers: [['origin', 'https://b.example']] });
      const blocked = [rawRequest(s.url, spec()), rawRequest(s.url, spec())];
      await until(() => s.seen.block === 2, 'two calls in JS');
      const before = { ...asked };
      const shed = await rawRequest(s.url, spec());
      assert.equal(shed.status, 503);
      assert.deepEqual(asked, before, 'no validator and no origin function ran for the shed call');
      assert.equal(shed.headers['access-control-allow-origin'], undefined, 'a dynamic origin is not decided');
      s.release();
      assert.deepEqual(
        (await Promise.all(blocked)).map((r) => r.status),
        [200, 200],
      );
    } finally {
      s.release();
      await s.close();
    }
  });

  it('while full, a call is shed before auth (a bad token gets 503 too)', async () => {
    const s = await blockingServer({ maxInFlight: 1 });
    try {
      const blocked = rawRequest(s.url, taskReq('shed.block', '{}'));
      await until(() => s.seen.block === 1, 'one call in JS');
      const spec = taskReq('shed.echo', '{}', { auth: false });
      assert.equal((await rawRequest(s.url, spec)).status, 503);
      // Discovery is not a call: answered as usual.
      assert.equal((await rawRequest(s.url, discoveryReq())).status, 200);
      s.release();
      assert.equal((await blocked).status, 200);
      assert.equal((await rawRequest(s.url, spec)).status, 401);
    } finally {
      s.release();
      await s.close();
    }
  });

  it('a client that goes away gives its place back', async () => {
    const s = await blockingServer({ maxInFlight: 1 });
    try {
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      const body = '{}';
      sock.write(
        `POST /__runner/task/shed.block HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\n` +
          `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      await until(() => s.seen.block === 1, 'the call in JS');
      assert.equal((await rawRequest(s.url, taskReq('shed.echo', '{}'))).status, 503);
      sock.destroy();
      let res;
      for (let i = 0; i < 100 && res?.status !== 200; i++) {
        res = await rawRequest(s.url, taskReq('shed.echo', '{"input":1}'));
        if (res.status !== 200) await sleep(20);
      }
      assert.equal(res.status, 200);
      assert.equal(s.seen.echo, 1);
    } finally {
      s.release();
      await s.close();
    }
  });

  it("Runner's createHttpClient sees the 503 as a TunnelError with code OVERLOADED", async () => {
    const s = await blockingServer({ maxInFlight: 1 });
    try {
      const client = createHttpClient({
        baseUrl: `${s.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
      });
      const blocked = client.task('shed.block', {});
      await until(() => s.seen.block === 1, 'one call in JS');
      await assert.rejects(client.task('shed.echo', 1), (e) => {
        assert.equal(e.code, 'OVERLOADED');
        assert.equal(e.message, 'Server busy');
        return true;
      });
      s.release();
      assert.equal(await blocked, 'done');
      assert.equal(await client.task('shed.echo', 2), 2);
    } finally {
      s.release();
      await s.close();
    }
  });
});

/** Connects and resolves once the socket is open. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => resolve(sock));
    sock.once('error', reject);
  });
}

/** One request on an open socket; resolves with the status once a whole answer arrived. */
function ask(sock, id = 'shed.echo') {
  const body = '{"input":1}';
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d) => {
      got += d.toString('latin1');
      const m = /content-length: (\d+)/i.exec(got);
      const end = got.indexOf('\r\n\r\n');
      if (m && end >= 0 && got.length >= end + 4 + Number(m[1])) {
        sock.off('data', onData);
        resolve(Number(got.slice(9, 12)));
      }
    };
    sock.on('data', onData);
    sock.once('close', () => reject(new Error(`closed; got ${JSON.stringify(got)}`)));
    sock.write(
      `POST /__runner/task/${id} HTTP/1.1\r\nhost: x\r\nx-runner-token: ${TOKEN}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
  });
}

/** What happens to a fresh connection: 'closed' (with nothing written) or an answer's status. */
async function fate(port) {
  const sock = await connect(port);
  sock.on('error', () => {});
  const closed = new Promise((resolve) => sock.once('close', () => resolve('closed')));
  try {
    return await Promise.race([ask(sock).catch(() => 'closed'), closed]);
  } finally {
    sock.destroy();
  }
}

describe('maxConnections', () => {
  it('connection N+1 is closed at once; after one closes, a new one is accepted', async () => {
    const s = await blockingServer({ maxConnections: 2 });
    const held = [];
    try {
      for (let i = 0; i < 2; i++) {
        const sock = await connect(s.port);
        held.push(sock);
        assert.equal(await ask(sock), 200);
      }
      assert.equal(await fate(s.port), 'closed');
      assert.equal(await fate(s.port), 'closed');
      // The connections already open are served as before.
      assert.equal(await ask(held[0]), 200);

      held.shift().destroy();
      let status;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = await fate(s.port);
        if (status !== 200) await sleep(20);
      }
      assert.equal(status, 200, 'a place came free');
      assert.equal(await ask(held[0]), 200);
    } finally {
      for (const sock of held) sock.destroy();
      await s.close();
    }
  });

  it('a connection busy with a call counts until it closes', async () => {
    const s = await blockingServer({ maxConnections: 1 });
    try {
      const busy = rawRequest(s.url, taskReq('shed.block', '{}'));
      await until(() => s.seen.block === 1, 'the call in JS');
      assert.equal(await fate(s.port), 'closed');
      s.release();
      assert.equal((await busy).status, 200);
      let status;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = await fate(s.port);
        if (status !== 200) await sleep(20);
      }
      assert.equal(status, 200);
    } finally {
      s.release();
      await s.close();
    }
  });
});

describe('shedding options: TypeError naming the field', () => {
  const { TunnelServer } = loadNative();
  const bad = [
    ['maxConnections', { maxConnections: 0 }],
    ['maxConnections', { maxConnections: -1 }],
    ['maxConnections', { maxConnections: 1.5 }],
    ['maxConnections', { maxConnections: '10' }],
    ['maxInFlight', { maxInFlight: 0 }],
    ['maxInFlight', { maxInFlight: Infinity }],
    ['maxInFlight', { maxInFlight: true }],
    ['retryAfterSeconds', { retryAfterSeconds: -1 }],
    ['retryAfterSeconds', { retryAfterSeconds: 0.5 }],
    ['retryAfterSeconds', { retryAfterSeconds: '1' }],
  ];
  for (const [field, opts] of bad) {
    it(`${JSON.stringify(opts)} names "${field}"`, () => {
      assert.throws(
        () => new TunnelServer({ auth: { token: TOKEN }, ...opts }),
        (err) => err instanceof TypeError && err.message.includes(`"${field}"`),
      );
    });
  }
  it('good values are accepted', () => {
    new TunnelServer({ maxConnections: 1, maxInFlight: 10_000, retryAfterSeconds: 0 });
    new TunnelServer({ maxConnections: undefined, maxInFlight: null });
  });
});
