'use strict';

// A demo server: `npm start`, then try the curl commands it prints.
const { TunnelServer } = require('./index.js');

const token = process.env.RUNNER_TOKEN || 'demo-token';
const server = new TunnelServer({
  port: Number(process.env.PORT || 7070),
  host: '127.0.0.1',
  auth: { token },
});

server.registerTask('demo.tasks.add', async ({ a, b }) => ({ sum: a + b }));
server.registerTask('demo.tasks.greet', async (input, ctx) => ({
  greeting: `Hello, ${input && input.name ? input.name : 'stranger'}!`,
  requestId: ctx.requestId,
}));
server.registerTask('demo.tasks.slow', async (input, ctx) => {
  const ms = Math.min(Number(input && input.ms) || 1000, 10000);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(ctx.signal.reason);
    });
  });
  return { waited: ms };
});
server.registerEvent('demo.events.ping', async (payload) => ({ pong: payload }));

server.listen().then(
  ({ url }) => {
    const h = `-H 'content-type: application/json' -H 'x-runner-token: ${token}'`;
    console.log(`runner-native demo listening on ${url}\n`);
    console.log('Try:');
    console.log(`  curl -s ${h} -d '{"input":{"a":1,"b":2}}' ${url}/__runner/task/demo.tasks.add`);
    console.log(`  curl -s ${h} -d '{"input":{"name":"Ada"}}' ${url}/__runner/task/demo.tasks.greet`);
    console.log(`  curl -s ${h} -d '{"payload":{"n":1},"returnPayload":true}' ${url}/__runner/event/demo.events.ping`);
    console.log(`  curl -s ${h} ${url}/__runner/discovery`);
    console.log(`  curl -s -d '{}' ${url}/__runner/task/demo.tasks.add      # 401 without the token`);
    console.log('\nCtrl-C to stop.');
  },
  (err) => {
    console.error(`cannot start: ${err.message}`);
    process.exit(1);
  },
);

process.on('SIGINT', () => {
  server.close().then(() => process.exit(0));
});
