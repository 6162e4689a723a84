'use strict';
// nativeExposure as a Runner resource: its value, start-up ordering of tunnel resources (the
// allow-list must be current when requests arrive), runtime changes, disposal, cancellation.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { r, globals, useExposureContext, cancellationError } = require('@bluelibs/runner');
const { rawRequest, openAndSend, sameAnswer } = require('./helpers');
const { startApp, tunnelResource, nodeExposure, nativeExposure } = require('./helpers/runner-app');
const { startRnApp, TOKEN } = require('./helpers/rn-app');

// Both servers' address() are node-like.
const portOf = (exposure, value) => value.server.address().port;
const taskCall = (id) => ({
  method: 'POST',
  path: `/__runner/task/${id}`,
  headers: [
    ['x-runner-token', TOKEN],
    ['content-type', 'application/json'],
  ],
  body: '{"input":1}',
});
const callTask = (port, id) => rawRequest({ port }, taskCall(id));

function connectRefused(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('nativeExposure value and disposal', () => {
  it('gives basePath (as nodeExposure normalises it), the bound port/url and close()', async () => {
    const nat = await startRnApp(nativeExposure, { basePath: 'api/', auth: { token: TOKEN } });
    const ref = await startRnApp(nodeExposure, { basePath: 'api/', auth: { token: TOKEN } });
    try {
      assert.equal(nat.value.basePath, ref.value.basePath);
      assert.equal(nat.value.basePath, '/api');
      assert.ok(Number.isInteger(nat.value.port) && nat.value.port > 0);
      assert.equal(nat.value.host, '127.0.0.1');
      assert.equal(nat.value.url, `http://127.0.0.1:${nat.value.port}`);
      assert.equal(nat.value.baseUrl, `http://127.0.0.1:${nat.value.port}/api`);
      assert.equal(typeof nat.value.close, 'function');
      const res = await rawRequest(
        { port: nat.value.port },
        {
          method: 'POST',
          path: '/api/task/rn.add',
          headers: [['x-runner-token', TOKEN]],
          body: '{"input":{"a":1,"b":2}}',
        },
      );
      assert.equal(res.text, '{"ok":true,"result":3}');
    } finally {
      await nat.close();
      await ref.close();
    }
  });

  it('has every member of nodeExposure’s value; the node:http ones throw, saying why', async () => {
    const nat = await startRnApp(nativeExposure, { auth: { token: TOKEN } });
    const ref = await startRnApp(nodeExposure, { auth: { token: TOKEN } });
    try {
      for (const [key, refValue] of Object.entries(ref.value)) {
        assert.ok(key in nat.value, `${key} is missing`);
        assert.equal(typeof nat.value[key], typeof refValue, `${key}'s type`);
      }
      for (const name of ['handleRequest', 'handleTask', 'attachTo', 'createServer', 'createRequestListener']) {
        assert.throws(() => nat.value[name](), { code: 'ERR_NATIVE_EXPOSURE_UNSUPPORTED', message: /http\.listen/ });
      }
      // server.address() as node's: { address, family, port }
      const want = ref.value.server.address();
      const got = nat.value.server.address();
      for (const key of ['address', 'family']) assert.equal(got[key], want[key], key);
      assert.equal(got.port, nat.value.port);
    } finally {
      await nat.close();
      await ref.close();
    }
  });

  it('closes its server when the Runner app is disposed', async () => {
    const nat = await startRnApp(nativeExposure, { auth: { token: TOKEN } });
    const port = nat.value.port;
    assert.equal(await connectRefused(port), false);
    await nat.runtime.dispose();
    assert.equal(await connectRefused(port), true);
    assert.equal(nat.value.server.address(), null);
  });

  it('close() first, then dispose, is fine', async () => {
    const nat = await startRnApp(nativeExposure, { auth: { token: TOKEN } });
    await nat.value.close();
    assert.equal(await connectRefused(nat.value.port), true);
    await nat.runtime.dispose();
  });

  it('without http.listen nothing listens (like nodeExposure without listen/server)', async () => {
    const app = await startApp(nativeExposure, {
      id: 'lc.app.nolisten',
      http: { auth: { token: TOKEN } },
      listen: false,
    });
    const ref = await startApp(nodeExposure, {
      id: 'lc.app.nolisten.ref',
      http: { auth: { token: TOKEN } },
      listen: false,
    });
    try {
      assert.equal(app.value.port, null);
      assert.equal(ref.value.server, null);
      assert.equal(app.value.server, null, 'as nodeExposure: no server without listen or server');
      assert.equal(app.value.basePath, '/__runner');
    } finally {
      await app.close();
      await ref.close();
    }
  });

  it('http.server (attach to a node:http server) is refused with a clear error', async () => {
    const http = { server: require('node:http').createServer() };
    await assert.rejects(
      startApp(nativeExposure, { id: 'lc.app.server', http, listen: false }),
      /http\.server .*not supported/,
    );
  });

  it('a busy port fails run() with EADDRINUSE', async () => {
    const nat = await startRnApp(nativeExposure, { auth: { token: TOKEN } });
    try {
      const http = { listen: { port: nat.value.port, host: '127.0.0.1' } };
      await assert.rejects(startApp(nativeExposure, { id: 'lc.app.busy', http }), (e) => e.code === 'EADDRINUSE');
    } finally {
      await nat.close();
    }
  });
});

/**
 * Exposure first, then a prober that calls the server while the app is still starting
 * (before globals.events.ready), then (optionally) a tunnel, then a prober that runs
 * after the tunnel initialised.
 */
async function startupProbe(exposure, initMode) {
  const probes = {};
  const add = r
    .task('lc.add')
    .run(async (n) => n + 1)
    .build();
  const probe = (id, deps) =>
    r
      .resource(id)
      .dependencies({ exposure, ...deps })
      .init(async (_c, { exposure: value }) => {
        const res = await callTask(portOf(exposure, value), 'lc.add');
        probes[id] = { status: res.status, text: res.text };
      })
      .build();
  const tunnel = tunnelResource('lc.tunnel', async () => {
    await new Promise((res) => setImmediate(res));
    return { mode: 'server', transport: 'http', tasks: [add.id] };
  });
  const app = await startApp(exposure, {
    id: 'lc.app.startup',
    http: { auth: { token: TOKEN } },
    items: [add, probe('lc.probe.before', {}), tunnel, probe('lc.probe.after', { tunnel })],
    runOptions: { initMode },
  });
  await app.close();
  return probes;
}

describe('allow-list during start-up', () => {
  for (const initMode of ['sequential', 'parallel']) {
    it(`follows tunnel resources that initialise after the exposure (${initMode})`, async () => {
      const ref = await startupProbe(nodeExposure, initMode);
      const nat = await startupProbe(nativeExposure, initMode);
      assert.deepEqual(Object.keys(ref).sort(), ['lc.probe.after', 'lc.probe.before']);
      assert.equal(ref['lc.probe.after'].status, 200);
      assert.deepEqual(nat, ref);
    });
  }
});

describe('allow-list changes at runtime', () => {
  it('refreshAllowList() picks up a mutated tunnel value (the reference recomputes per request)', async () => {
    const start = (exposure) => {
      const a = r
        .task('lc.rt.a')
        .run(async () => 'a')
        .build();
      const b = r
        .task('lc.rt.b')
        .run(async () => 'b')
        .build();
      const tunnel = tunnelResource('lc.rt.tunnel', () => ({ mode: 'server', tasks: [a.id] }));
      return startApp(exposure, { id: 'lc.rt.app', http: { auth: { token: TOKEN } }, items: [a, b, tunnel] });
    };
    const ref = await start(nodeExposure);
    const nat = await start(nativeExposure);
    try {
      const natValue = nat.value;
      const check = (id, expected) => sameAnswer({ ref, nat }, taskCall(id), expected, { label: id });
      await check('lc.rt.b', '403 FORBIDDEN');
      for (const { runtime } of [ref, nat]) {
        const store = runtime.getResourceValue(globals.resources.store);
        const value = store.resources.get('lc.rt.tunnel').value;
        value.tasks.push('lc.rt.b', 'lc.rt.ghost');
      }
      // Not pushed yet: the native side still has the start-up list.
      assert.equal((await callTask(natValue.port, 'lc.rt.b')).status, 403);
      assert.deepEqual(natValue.refreshAllowList(), {
        enabled: true,
        tasks: ['lc.rt.a', 'lc.rt.b', 'lc.rt.ghost'],
        events: [],
      });
      await check('lc.rt.b', '200');
      await check('lc.rt.ghost', '404 NOT_FOUND'); // allow-listed, not registered
      const disc = { method: 'GET', path: '/__runner/discovery', headers: [['x-runner-token', TOKEN]] };
      await sameAnswer({ ref, nat }, disc, '200');
    } finally {
      await ref.close();
      await nat.close();
    }
  });
});

describe('cancellation', () => {
  it("a client going away aborts useExposureContext().signal with Runner's cancellation error", async () => {
    let seen;
    const done = new Promise((resolve) => {
      seen = resolve;
    });
    let started;
    const running = new Promise((resolve) => {
      started = resolve;
    });
    const wait = r
      .task('lc.wait')
      .run(async () => {
        const { signal } = useExposureContext();
        started();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        seen(signal.reason);
        throw signal.reason;
      })
      .build();
    const tunnel = tunnelResource('lc.c.tunnel', () => ({ mode: 'server', tasks: [wait.id] }));
    const app = await startApp(nativeExposure, {
      id: 'lc.c.app',
      http: { auth: { token: TOKEN } },
      items: [wait, tunnel],
    });
    try {
      const { port } = app;
      const socket = await openAndSend(
        { port },
        { method: 'POST', path: '/__runner/task/lc.wait', headers: [['x-runner-token', TOKEN]], body: '{}' },
      );
      await running;
      socket.destroy();
      const reason = await done;
      assert.ok(cancellationError.is(reason), `reason: ${reason && reason.name}`);
      // the server keeps serving
      const res = await rawRequest(
        { port },
        { method: 'GET', path: '/__runner/discovery', headers: [['x-runner-token', TOKEN]] },
      );
      assert.equal(res.status, 200);
    } finally {
      await app.close();
    }
  });
});
