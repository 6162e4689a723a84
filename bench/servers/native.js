'use strict';
// @bluelibs/runner-native's TunnelServer (its own HTTP/1.1 server on tokio threads in the process, JS handlers).
const { announce, exitWithParent, TOKEN } = require('../lib/common');
const { loadTunnelServer, registerBench } = require('./lib/package');

const TunnelServer = loadTunnelServer();

(async () => {
  const options = { port: 0, host: '127.0.0.1', auth: { token: TOKEN } };
  // BENCH_NATIVE_METRICS=1: with the Prometheus endpoint (bench/ab.js compares it).
  if (process.env.BENCH_NATIVE_METRICS === '1') options.metrics = { path: '/metrics' };
  // BENCH_NATIVE_OPTIONS: more options as JSON, e.g. '{"maxInFlight":1024}' (bench/ab.js: label=dir,BENCH_NATIVE_OPTIONS={"maxInFlight":1024}).
  Object.assign(options, JSON.parse(process.env.BENCH_NATIVE_OPTIONS || '{}'));
  const s = registerBench(new TunnelServer(options));
  const { port } = await s.listen();
  announce({ port });
  exitWithParent(() => { s.close().catch(() => {}); });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
