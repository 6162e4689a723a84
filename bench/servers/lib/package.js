'use strict';
// The package under test as the native peers load it (this checkout), and the bench
// handlers they all register.
const { handlers, skip, countBytes, ROOT } = require('../../lib/common');

/** The package's TunnelServer; skips the peer when the addon cannot be loaded. */
function loadTunnelServer() {
  let mod;
  try {
    mod = require(ROOT);
  } catch (e) {
    skip(`native addon not loadable (run \`npm run build\` first): ${String(e.message).split('\n')[0]}`);
  }
  if (!mod || typeof mod.TunnelServer !== 'function') skip('index.js does not export TunnelServer');
  return mod.TunnelServer;
}

/** Registers the bench tasks and events on `server` (and bench.upload, which reads the raw body). */
function registerBench(server) {
  for (const [id, fn] of Object.entries(handlers.tasks)) server.registerTask(id, fn);
  for (const [id, fn] of Object.entries(handlers.events)) server.registerEvent(id, fn);
  server.registerTask('bench.upload', async (input, ctx) => ({ bytes: await countBytes(ctx.req) }));
  return server;
}

module.exports = { loadTunnelServer, registerBench };
