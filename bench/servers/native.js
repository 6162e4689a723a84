'use strict';
// @bluelibs/runner-native's TunnelServer (axum/tokio in-process, JS handlers).
const path = require('node:path');
const { handlers, announce, skip, exitWithParent, TOKEN, countBytes } = require('../lib/common');

let mod;
try {
  mod = require(path.resolve(__dirname, '..', '..'));
} catch (e) {
  skip(`native addon not loadable (run \`npm run build\` first): ${String(e.message).split('\n')[0]}`);
}
if (!mod || typeof mod.TunnelServer !== 'function') skip('index.js does not export TunnelServer');

(async () => {
  const options = { port: 0, host: '127.0.0.1', auth: { token: TOKEN } };
  // BENCH_NATIVE_METRICS=1: with the Prometheus endpoint (bench/ab.js compares it).
  if (process.env.BENCH_NATIVE_METRICS === '1') options.metrics = { path: '/metrics' };
  // BENCH_NATIVE_OPTIONS: more options as JSON, e.g. '{"maxInFlight":1024}' (bench/ab.js: label=dir,BENCH_NATIVE_OPTIONS={"maxInFlight":1024}).
  Object.assign(options, JSON.parse(process.env.BENCH_NATIVE_OPTIONS || '{}'));
  const s = new mod.TunnelServer(options);
  for (const [id, fn] of Object.entries(handlers.tasks)) s.registerTask(id, fn);
  for (const [id, fn] of Object.entries(handlers.events)) s.registerEvent(id, fn);
  s.registerTask('bench.upload', async (input, ctx) => ({ bytes: await countBytes(ctx.req) }));
  const { port } = await s.listen();
  announce({ port });
  exitWithParent(() => { s.close().catch(() => {}); });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
