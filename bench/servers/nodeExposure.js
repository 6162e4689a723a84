'use strict';
// A real Runner app exposed by Runner's own nodeExposure (node:http based).
const { nodeExposure } = require('@bluelibs/runner/node');
const { announce, exitWithParent, TOKEN } = require('../lib/common');
const { start } = require('./runner-app');

(async () => {
  const runtime = await start(
    nodeExposure.with({
      http: { listen: { port: 0, host: '127.0.0.1' }, auth: { token: TOKEN } },
    }),
  );
  const exposure = runtime.getResourceValue(nodeExposure);
  announce({ port: exposure.server.address().port });
  exitWithParent(() => runtime.dispose().catch(() => {}));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
