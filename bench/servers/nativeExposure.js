'use strict';
// Slot for the Runner integration of the native server: the same Runner app as
// nodeExposure.js, exposed by require('/work/main/runner').nativeExposure with the same
// config shape. Skipped until that module exists.
const path = require('node:path');
const { announce, skip, exitWithParent, freePort, waitForPort, TOKEN } = require('../lib/common');

let nativeExposure;
try {
  ({ nativeExposure } = require(path.resolve(__dirname, '..', '..', 'runner')));
} catch (e) {
  skip(`require('./runner').nativeExposure not available yet: ${String(e.message).split('\n')[0]}`);
}
if (!nativeExposure || typeof nativeExposure.with !== 'function')
  skip('./runner does not export a nativeExposure resource');

/** Find the bound port in whatever the resource's value exposes. */
function portOf(value) {
  if (!value || typeof value !== 'object') return undefined;
  if (Number.isInteger(value.port) && value.port > 0) return value.port;
  if (typeof value.url === 'string') {
    try {
      return Number(new URL(value.url).port) || undefined;
    } catch {}
  }
  try {
    const a = value.server && typeof value.server.address === 'function' ? value.server.address() : value.address;
    if (a && a.port) return a.port;
  } catch {}
  return undefined;
}

(async () => {
  const { start } = require('./runner-app');
  // Pre-pick a port so we know it even if the resource value doesn't report one.
  const wanted = await freePort();
  const runtime = await start(
    nativeExposure.with({
      http: { listen: { port: wanted, host: '127.0.0.1' }, auth: { token: TOKEN } },
    }),
  );
  const port = portOf(runtime.getResourceValue(nativeExposure)) || wanted;
  await waitForPort(port);
  announce({ port });
  exitWithParent(() => runtime.dispose().catch(() => {}));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
