'use strict';
// One Runner app run in several worker threads, all served from one native listener
// (nativeExposure with http.share). The main thread only starts the workers.
//
//   node examples/shared-workers.js            # one worker per core
//   WORKERS=2 PORT=7071 node examples/shared-workers.js
//   curl -s -X POST http://127.0.0.1:7071/__runner/task/shared.whoami \
//     -H 'x-runner-token: secret' -H 'content-type: application/json' -d '{"input":{}}'
//
// Each answer says which thread served it; ctrl-c stops them all.
const os = require('node:os');
const { Worker, isMainThread, threadId } = require('node:worker_threads');

const PORT = Number(process.env.PORT || 7071);
const TOKEN = process.env.TOKEN || 'secret';

if (isMainThread) {
  const count = Number(process.env.WORKERS) || Math.max(1, os.availableParallelism() - 1);
  const workers = [];
  for (let i = 0; i < count; i++) workers.push(new Worker(__filename));
  let listening = 0;
  for (const w of workers) {
    w.on('message', (m) => {
      if (m === 'listening' && ++listening === count) {
        console.log(`${count} worker threads share http://127.0.0.1:${PORT}/__runner`);
        console.log(
          `curl -s -X POST http://127.0.0.1:${PORT}/__runner/task/shared.whoami -H 'x-runner-token: ${TOKEN}' -H 'content-type: application/json' -d '{"input":{}}'`,
        );
      }
    });
    w.on('error', (e) => console.error('worker failed:', e));
  }
  process.once('SIGINT', () => {
    for (const w of workers) w.postMessage('stop');
  });
} else {
  const { parentPort } = require('node:worker_threads');
  const { r, run, globals } = require('@bluelibs/runner');
  const { nativeExposure } = require('../runner');

  const whoami = r
    .task('shared.whoami')
    .run(async () => ({ threadId }))
    .build();
  const tunnel = r
    .resource('shared.tunnel')
    .tags([globals.tags.tunnel])
    .init(async () => ({ mode: 'server', transport: 'http', tasks: [whoami.id], events: [] }))
    .build();
  const app = r
    .resource('shared.app')
    .register([
      whoami,
      tunnel,
      nativeExposure.with({
        http: { listen: { port: PORT, host: '127.0.0.1' }, share: true, auth: { token: TOKEN } },
      }),
    ])
    .build();

  run(app, { logs: { printThreshold: 'error' }, shutdownHooks: false }).then((runtime) => {
    parentPort.postMessage('listening');
    // Disposing closes this worker's share; the last one frees the port, and the
    // process exits once every worker has.
    parentPort.once('message', () => runtime.dispose());
  });
}
