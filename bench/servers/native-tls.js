'use strict';
// @bluelibs/runner-native's TunnelServer with the tls option (rustls on its HTTP threads),
// the test certificate (EC P-256), the same handlers as the native peer.
const fs = require('node:fs');
const path = require('node:path');
const { handlers, announce, skip, exitWithParent, TOKEN, ROOT } = require('../lib/common');

let mod;
try {
  mod = require(ROOT);
} catch (e) {
  skip(`native addon not loadable (run \`npm run build\` first): ${String(e.message).split('\n')[0]}`);
}

(async () => {
  const dir = path.join(ROOT, '__test__', 'fixtures', 'tls');
  const tls = {
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    key: fs.readFileSync(path.join(dir, 'server.key')),
  };
  const s = new mod.TunnelServer({ port: 0, host: '127.0.0.1', auth: { token: TOKEN }, tls });
  for (const [id, fn] of Object.entries(handlers.tasks)) s.registerTask(id, fn);
  for (const [id, fn] of Object.entries(handlers.events)) s.registerEvent(id, fn);
  const { port } = await s.listen();
  announce({ port, tls: true });
  exitWithParent(() => {
    s.close().catch(() => {});
  });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
