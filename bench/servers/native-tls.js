'use strict';
// @bluelibs/runner-native's TunnelServer with the tls option (rustls on its HTTP threads),
// the test certificate (EC P-256), the same handlers as the native peer.
const fs = require('node:fs');
const path = require('node:path');
const { announce, exitWithParent, TOKEN, ROOT } = require('../lib/common');
const { loadTunnelServer, registerBench } = require('./lib/package');

const TunnelServer = loadTunnelServer();

(async () => {
  const dir = path.join(ROOT, '__test__', 'fixtures', 'tls');
  const tls = {
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    key: fs.readFileSync(path.join(dir, 'server.key')),
  };
  const s = registerBench(new TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: TOKEN }, tls }));
  const { port } = await s.listen();
  announce({ port, tls: true });
  exitWithParent(() => {
    s.close().catch(() => {});
  });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
