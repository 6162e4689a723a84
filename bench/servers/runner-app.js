'use strict';
// The Runner application shared by the nodeExposure and nativeExposure peers:
// tasks bench.add / bench.echo, event bench.ping (with a no-op hook, so an emit does
// the same work as the other peers' event handler), and a server-mode tunnel resource
// tagged globals.tags.tunnel that allow-lists exactly these ids.
const { r, run, globals, useExposureContext } = require('@bluelibs/runner');
const { handlers, countBytes } = require('../lib/common');

function buildApp(exposureWithConfig) {
  const add = r.task('bench.add').run(handlers.tasks['bench.add']).build();
  const echo = r.task('bench.echo').run(handlers.tasks['bench.echo']).build();
  const cpu = r.task('bench.cpu').run(handlers.tasks['bench.cpu']).build();
  const upload = r
    .task('bench.upload')
    .run(async () => ({ bytes: await countBytes(useExposureContext().req) }))
    .build();
  const ping = r.event('bench.ping').build();
  const pingHook = r
    .hook('bench.ping.hook')
    .on(ping)
    .run(async (e) => handlers.events['bench.ping'](e.data))
    .build();
  const tunnel = r
    .resource('bench.tunnel')
    .tags([globals.tags.tunnel])
    .init(async () => ({
      mode: 'server',
      transport: 'http',
      tasks: [add.id, echo.id, cpu.id, upload.id],
      events: [ping.id],
    }))
    .build();
  const app = r
    .resource('bench.app')
    .register([add, echo, cpu, upload, ping, pingHook, tunnel, exposureWithConfig])
    .build();
  return app;
}

async function start(exposureWithConfig) {
  const app = buildApp(exposureWithConfig);
  const runtime = await run(app, {
    logs: { printThreshold: 'error' },
    shutdownHooks: false,
  });
  return runtime;
}

module.exports = { buildApp, start };
