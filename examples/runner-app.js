'use strict';

// A Runner app exposed by nativeExposure, called with Runner's own client.
//   node examples/runner-app.js          # start, make a few calls, stop
//   node examples/runner-app.js --serve  # keep serving; prints curl commands
//
// Switching from nodeExposure is one import: nativeExposure.with() takes the same config.
const { r, run, globals, createHttpClient, createContext, Serializer } = require('@bluelibs/runner');
const { nativeExposure } = require('../runner'); // published: require('@bluelibs/runner-native/runner')

const token = process.env.RUNNER_TOKEN || 'demo-token';
const port = Number(process.env.PORT || 7070);

// Typed errors must be registered in the app to reach clients with their id, data and httpCode.
const outOfStock = r
  .error('shop.errors.outOfStock')
  .httpCode(409)
  .format((d) => `Out of stock: ${d.sku}`)
  .build();
// An async context: clients send it in x-runner-context, tasks read it with use().
const currentUser = createContext('shop.ctx.user');

const add = r
  .task('shop.tasks.add')
  .run(async ({ a, b }) => ({ sum: a + b }))
  .build();
const buy = r
  .task('shop.tasks.buy')
  .run(async ({ sku, qty }) => {
    if (qty > 3) outOfStock.throw({ sku });
    return { sku, qty, by: currentUser.use().name, at: new Date() };
  })
  .build();
const ordered = r.event('shop.events.ordered').build();
const onOrdered = r
  .hook('shop.hooks.onOrdered')
  .on(ordered)
  .run(async (e) => {
    e.data = { ...e.data, confirmed: true };
  })
  .build();

// nodeExposure and nativeExposure serve only what server-mode tunnel resources allow-list.
const serverTunnel = r
  .resource('shop.tunnel')
  .tags([globals.tags.tunnel])
  .init(async () => ({ mode: 'server', transport: 'http', tasks: [add.id, buy.id], events: [ordered.id] }))
  .build();

const app = r
  .resource('shop.app')
  .register([
    add,
    buy,
    ordered,
    onOrdered,
    outOfStock,
    currentUser,
    serverTunnel,
    nativeExposure.with({
      http: {
        basePath: '/__runner',
        listen: { port, host: '127.0.0.1' },
        auth: { token },
        cors: { origin: ['http://localhost:3000'] },
        limits: { json: { maxSize: 1024 * 1024 } },
      },
    }),
  ])
  .build();

async function main() {
  const runtime = await run(app, { logs: { printThreshold: 'warn' } });
  const exposure = runtime.getResourceValue(nativeExposure);
  console.log(`Runner app served natively at ${exposure.baseUrl}`);

  const client = createHttpClient({
    baseUrl: exposure.baseUrl,
    auth: { token },
    serializer: new Serializer(),
    errorRegistry: new Map([[outOfStock.id, outOfStock]]),
    contexts: [currentUser],
  });
  console.log('add     ->', await client.task(add.id, { a: 1, b: 2 }));
  console.log(
    'buy     ->',
    await currentUser.provide({ name: 'Ada' }, () => client.task(buy.id, { sku: 'A-1', qty: 1 })),
  );
  try {
    await currentUser.provide({ name: 'Ada' }, () => client.task(buy.id, { sku: 'A-1', qty: 9 }));
  } catch (e) {
    console.log('buy 9   ->', outOfStock.is(e) ? `typed error ${e.name}: ${e.message}` : e);
  }
  console.log('ordered ->', await client.eventWithResult(ordered.id, { id: 7 }));

  if (!process.argv.includes('--serve')) {
    await runtime.dispose(); // closes the native server too
    return;
  }
  const h = `-H 'content-type: application/json' -H 'x-runner-token: ${token}'`;
  console.log('\nTry:');
  console.log(`  curl -s ${h} -d '{"input":{"a":1,"b":2}}' ${exposure.baseUrl}/task/${add.id}`);
  console.log(`  curl -s ${h} -d '{"payload":{"id":1},"returnPayload":true}' ${exposure.baseUrl}/event/${ordered.id}`);
  console.log(`  curl -s ${h} ${exposure.baseUrl}/discovery`);
  console.log('\nCtrl-C to stop (the Runner app is disposed, which closes the server).');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
