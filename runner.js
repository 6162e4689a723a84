'use strict';

// `@bluelibs/runner-native/runner`: `nativeExposure`, a drop-in for Runner's
// `nodeExposure`. The same config (`nativeExposure.with({ http: {...} })`),
// the same answers, served by the native TunnelServer of this package.
//
// Runner semantics are reproduced from `@bluelibs/runner` 5.5's node exposure:
// tasks run through the task runner, events through the event manager, the
// allow-list comes from server-mode tunnel resources (`globals.tags.tunnel`),
// typed errors are recognised through the store's error helpers, auth
// validator tasks (`globals.tags.authValidator`) run through the task runner,
// `x-runner-context` hydrates the app's async contexts, and tasks can call
// `useExposureContext()`. The pieces live in lib/runner/:
//   config.js      the `http` config as TunnelServer options (base path, auth, limits)
//   calls.js       tasks and events registered on the server, run through Runner
//   context.js     useExposureContext()'s value and the x-runner-context contexts
//   allow-list.js  the tunnel resources' allow-list, kept in step on the server
//   errors.js      typed errors and cancellation, answered as the reference does
//   exposure.js    the resource's value: all of the above, listening

const { r, globals } = require('./lib/runner/peer.js');
const { createNativeExposure } = require('./lib/runner/exposure.js');
const { ExposureRequestContext } = require('./lib/runner/context.js');
const { computeAllowList } = require('./lib/runner/allow-list.js');
const { resolveAppErrorExtra } = require('./lib/runner/errors.js');

const nativeExposure = r
  .resource('platform.node.resources.nativeExposure')
  .meta({
    title: 'Native Exposure (HTTP)',
    description:
      'Exposes Runner tasks and events over HTTP from a native (Rust) server, speaking the tunnel protocol like nodeExposure.',
  })
  .dependencies({
    store: globals.resources.store,
    taskRunner: globals.resources.taskRunner,
    eventManager: globals.resources.eventManager,
    logger: globals.resources.logger,
    serializer: globals.resources.serializer,
  })
  .init(async (cfg, deps) => createNativeExposure(cfg, deps))
  .dispose(async (value) => {
    if (value?.close) await value.close();
  })
  .build();

module.exports = {
  nativeExposure,
  ExposureRequestContext,
  // exposed for tests and advanced use
  computeAllowList,
  resolveAppErrorExtra,
};
