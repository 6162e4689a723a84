'use strict';
// Runner's own clients (createHttpClient, and the Node createHttpSmartClient) talking to the standalone TunnelServer (runner.clients.test.js: the same clients against nativeExposure).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { r, Serializer, createHttpClient, createHttpSmartClient, createContext } = require('@bluelibs/runner');
const { startNative, startReference, TOKEN } = require('./helpers');

const outOfStock = r
  .error('shop.errors.outOfStock')
  .httpCode(409)
  .format((d) => `Out of stock: ${d.sku}`)
  .build();
const userContext = createContext('shop.ctx.user');

const handlers = () => ({
  tasks: {
    'shop.add': async ({ a, b }) => a + b,
    'shop.dates': async ({ when, n }) => ({
      isDate: when instanceof Date,
      next: new Date(when.getTime() + 86400000),
      doubled: n * 2n,
      none: undefined,
    }),
    'shop.buy': async ({ sku }) => outOfStock.throw({ sku }),
    'shop.crash': async () => {
      throw new Error('internal detail');
    },
    'shop.context': async (input, ctx) => ({ context: ctx.context ?? null }),
    'shop/with slash': async () => 'slash ok',
  },
  events: {
    'shop.ordered': async (payload) => ({ ...payload, seen: true }),
    'shop.noop': async () => undefined,
  },
  errors: [outOfStock],
});

function suiteFor(label, start) {
  describe(`createHttpClient against the ${label} server`, () => {
    let srv;
    let client;
    before(async () => {
      srv = await start();
      client = createHttpClient({
        baseUrl: `${srv.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
      });
    });
    after(async () => srv && srv.close());

    it('task returns its result', async () => {
      assert.equal(await client.task('shop.add', { a: 2, b: 40 }), 42);
    });
    it('task with Dates and BigInt round-trips through the serializer', async () => {
      const out = await client.task('shop.dates', { when: new Date('2020-02-28T00:00:00.000Z'), n: 21n });
      assert.equal(out.isDate, true);
      assert.ok(out.next instanceof Date);
      assert.equal(out.next.toISOString(), '2020-02-29T00:00:00.000Z');
      assert.equal(out.doubled, 42n);
      assert.ok('none' in out);
      assert.equal(out.none, undefined);
    });
    it('task id with a slash (client percent-encodes it)', async () => {
      assert.equal(await client.task('shop/with slash', undefined), 'slash ok');
    });
    it('event resolves without a result', async () => {
      assert.equal(await client.event('shop.ordered', { id: 1 }), undefined);
    });
    it('eventWithResult returns the payload changed by the handler', async () => {
      assert.deepEqual(await client.eventWithResult('shop.ordered', { id: 2, at: new Date(0) }), {
        id: 2,
        at: new Date(0),
        seen: true,
      });
    });
    it('eventWithResult returns the original payload when the handler returns nothing', async () => {
      assert.deepEqual(await client.eventWithResult('shop.noop', { keep: [1, 2] }), { keep: [1, 2] });
    });
    it('typed error reaches the client with id, data and httpCode', async () => {
      await assert.rejects(client.task('shop.buy', { sku: 'A-1' }), (e) => {
        assert.equal(e.id, 'shop.errors.outOfStock');
        assert.deepEqual(e.data, { sku: 'A-1' });
        assert.equal(e.httpCode, 409);
        assert.equal(e.message, 'Out of stock: A-1');
        return true;
      });
    });
    it('typed error is rethrown as the Runner error when the client has an errorRegistry', async () => {
      const typed = createHttpClient({
        baseUrl: `${srv.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
        errorRegistry: new Map([[outOfStock.id, outOfStock]]),
      });
      await assert.rejects(typed.task('shop.buy', { sku: 'B-2' }), (e) => {
        assert.ok(outOfStock.is(e), 'is the typed Runner error');
        assert.deepEqual(e.data, { sku: 'B-2' });
        return true;
      });
    });
    it('plain error reaches the client as INTERNAL_ERROR without details', async () => {
      await assert.rejects(client.task('shop.crash', {}), (e) => {
        assert.equal(e.code, 'INTERNAL_ERROR');
        assert.equal(e.message, 'Internal Error');
        return true;
      });
    });
    it('unknown task reaches the client as NOT_FOUND', async () => {
      await assert.rejects(client.task('shop.nope', {}), (e) => {
        assert.equal(e.code, 'NOT_FOUND');
        assert.equal(e.message, 'Task shop.nope not found');
        return true;
      });
    });
    it('wrong token reaches the client as UNAUTHORIZED', async () => {
      const bad = createHttpClient({
        baseUrl: `${srv.url}/__runner`,
        auth: { token: 'wrong' },
        serializer: new Serializer(),
      });
      await assert.rejects(bad.task('shop.add', { a: 1, b: 1 }), (e) => {
        assert.equal(e.code, 'UNAUTHORIZED');
        return true;
      });
    });
    it('custom auth header through the client', async () => {
      const s2 = await start({ auth: { token: 'k', header: 'x-api-key' } });
      try {
        const c2 = createHttpClient({
          baseUrl: `${s2.url}/__runner`,
          auth: { token: 'k', header: 'X-Api-Key' },
          serializer: new Serializer(),
        });
        assert.equal(await c2.task('shop.add', { a: 1, b: 2 }), 3);
      } finally {
        await s2.close();
      }
    });
    it('createHttpSmartClient (Node) calls a task and an event', async () => {
      const smart = createHttpSmartClient({
        baseUrl: `${srv.url}/__runner`,
        auth: { token: TOKEN },
        serializer: new Serializer(),
      });
      assert.equal(await smart.task('shop.add', { a: 20, b: 22 }), 42);
      assert.deepEqual(await smart.eventWithResult('shop.ordered', { id: 3 }), { id: 3, seen: true });
      await assert.rejects(
        smart.task('shop.buy', { sku: 'C-3' }),
        (e) => e.id === 'shop.errors.outOfStock' && e.httpCode === 409,
      );
    });
  });
}

suiteFor('native', (over = {}) => startNative(handlers(), { auth: { token: TOKEN }, serializer: 'runner', ...over }));
// the same suite against the reference shows that the expectations are Runner's own behaviour
suiteFor('reference (nodeExposure)', (over = {}) =>
  startReference(handlers(), { auth: { token: TOKEN }, serializer: 'runner', ...over }),
);

describe('createHttpClient async contexts reach the native handler as ctx.context', () => {
  let srv;
  before(async () => {
    srv = await startNative(handlers(), { auth: { token: TOKEN }, serializer: 'runner' });
  });
  after(async () => srv && srv.close());
  it('x-runner-context built by the client is parsed into ctx.context', async () => {
    const client = createHttpClient({
      baseUrl: `${srv.url}/__runner`,
      auth: { token: TOKEN },
      serializer: new Serializer(),
      contexts: [userContext],
    });
    const out = await userContext.provide({ userId: 7 }, () => client.task('shop.context', {}));
    assert.ok(out.context && typeof out.context === 'object', `context: ${JSON.stringify(out.context)}`);
    const raw = out.context['shop.ctx.user'];
    const value = typeof raw === 'string' ? userContext.parse(raw) : raw;
    assert.deepEqual(value, { userId: 7 });
  });
});
