'use strict';
// Runner's own clients, unchanged, against a Runner app exposed by nativeExposure (and, as a
// control that the expectations are right, by nodeExposure).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Serializer, createHttpClient, createHttpSmartClient, createHttpMixedClient } = require('@bluelibs/runner');
const { nodeExposure, nativeExposure } = require('./helpers/runner-app');
const { startRnApp, errors, userContext, tenantContext, TOKEN } = require('./helpers/rn-app');

for (const [label, exposure] of [
  ['nativeExposure', nativeExposure],
  ['nodeExposure (control)', nodeExposure],
]) {
  describe(`Runner clients against ${label}`, () => {
    let app;
    let baseUrl;
    const serializer = new Serializer();
    before(async () => {
      app = await startRnApp(exposure, { auth: { token: TOKEN } });
      baseUrl = app.baseUrl;
    });
    after(async () => app && app.close());

    describe('createHttpClient', () => {
      const client = () =>
        createHttpClient({
          baseUrl,
          auth: { token: TOKEN },
          serializer,
          errorRegistry: new Map([[errors.outOfStock.id, errors.outOfStock]]),
          contexts: [userContext, tenantContext],
        });

      it('task result', async () => {
        assert.equal(await client().task('rn.add', { a: 2, b: 40 }), 42);
      });
      it('Dates, BigInt and undefined round-trip through the serializer', async () => {
        const out = await client().task('rn.dates', { when: new Date('2020-02-28T00:00:00.000Z'), n: 21n });
        assert.equal(out.isDate, true);
        assert.ok(out.next instanceof Date);
        assert.equal(out.next.toISOString(), '2020-02-29T00:00:00.000Z');
        assert.equal(out.doubled, 42n);
        assert.ok('none' in out);
      });
      it('middleware and input validation run', async () => {
        assert.deepEqual(await client().task('rn.middlewared', {}), { ran: true, stamped: true });
        assert.deepEqual(await client().task('rn.validated', { n: 3 }), { n: 30 });
        await assert.rejects(client().task('rn.validated', { n: 'x' }), (e) => {
          assert.equal(e.code, 'INTERNAL_ERROR');
          return true;
        });
      });
      it('a typed error is rethrown as the same Runner error helper', async () => {
        await assert.rejects(client().task('rn.buy', { sku: 'B-2' }), (e) => {
          assert.ok(errors.outOfStock.is(e), `expected the typed error, got ${e && e.name}: ${e && e.message}`);
          assert.deepEqual(e.data, { sku: 'B-2' });
          assert.equal(e.message, 'Out of stock: B-2');
          return true;
        });
      });
      it('a typed error from an event hook is rethrown too', async () => {
        await assert.rejects(client().event('rn.failing', { typed: true }), (e) => errors.outOfStock.is(e));
      });
      it('a typed error not in the registry arrives with id, data and httpCode', async () => {
        await assert.rejects(client().task('rn.noHttpCode'), (e) => {
          assert.equal(e.id, errors.noHttpCode.id);
          assert.deepEqual(e.data, { x: 1 });
          return true;
        });
      });
      it('a plain error arrives without details', async () => {
        await assert.rejects(client().task('rn.crash'), (e) => {
          assert.equal(e.code, 'INTERNAL_ERROR');
          assert.equal(e.message, 'Internal Error');
          return true;
        });
      });
      it('async contexts are propagated from the client', async () => {
        const out = await userContext.provide({ name: 'ada', at: new Date(7) }, () =>
          tenantContext.provide('acme', () => client().task('rn.whoami')),
        );
        assert.deepEqual(out, { user: { name: 'ada', at: new Date(7) }, tenant: 'acme' });
        assert.deepEqual(await client().task('rn.whoami'), { user: null, tenant: null });
      });
      it('contexts reach event hooks', async () => {
        const out = await userContext.provide('bob', () => client().eventWithResult('rn.ctxEvent', {}));
        assert.deepEqual(out, { user: 'bob' });
      });
      it('events: emit and eventWithResult', async () => {
        assert.equal(await client().event('rn.ordered', { id: 1 }), undefined);
        assert.deepEqual(await client().eventWithResult('rn.ordered', { id: 2, at: new Date(0) }), {
          id: 2,
          at: new Date(0),
          seen: true,
        });
        assert.deepEqual(await client().eventWithResult('rn.noop', { keep: [1] }), { keep: [1] });
        await assert.rejects(
          client().eventWithResult('rn.parallel', {}),
          (e) => e.code === 'PARALLEL_EVENT_RETURN_UNSUPPORTED',
        );
      });
      it('not exposed and unauthorised calls are rejected', async () => {
        await assert.rejects(client().task('rn.hidden'), (e) => e.code === 'FORBIDDEN');
        const anon = createHttpClient({ baseUrl, serializer });
        await assert.rejects(anon.task('rn.add', { a: 1, b: 1 }), (e) => e.code === 'UNAUTHORIZED');
      });
    });

    for (const [name, make] of [
      ['createHttpSmartClient', createHttpSmartClient],
      ['createHttpMixedClient', createHttpMixedClient],
    ]) {
      describe(`${name} (JSON calls)`, () => {
        // (the smart client insists that every configured context is provided, so only the
        // contexts test configures one)
        const client = (contexts) =>
          make({
            baseUrl,
            auth: { token: TOKEN },
            serializer,
            errorRegistry: new Map([[errors.outOfStock.id, errors.outOfStock]]),
            contexts,
          });
        it('task, Dates and BigInt', async () => {
          assert.equal(await client().task('rn.add', { a: 1, b: 2 }), 3);
          const out = await client().task('rn.dates', { when: new Date(0), n: 1n });
          assert.equal(out.next.getTime(), 86400000);
          assert.equal(out.doubled, 2n);
        });
        it('typed error rethrown', async () => {
          await assert.rejects(
            client().task('rn.buy', { sku: 'S' }),
            (e) => errors.outOfStock.is(e) && e.data.sku === 'S',
          );
        });
        it('contexts', async () => {
          assert.deepEqual(await userContext.provide('eve', () => client([userContext]).task('rn.whoami')), {
            user: 'eve',
            tenant: null,
          });
        });
        it('events', async () => {
          assert.equal(await client().event('rn.ordered', { id: 3 }), undefined);
          assert.deepEqual(await client().eventWithResult('rn.ordered', { id: 4 }), { id: 4, seen: true });
        });
      });
    }
  });
}
