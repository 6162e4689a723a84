'use strict';
// Node's https: the node-http peer's handler (same work) behind Node's TLS, with the
// test certificate (EC P-256) the native-tls peer serves.
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const { announce, exitWithParent, ROOT } = require('../lib/common');
const { handle } = require('./node-http');

const dir = path.join(ROOT, '__test__', 'fixtures', 'tls');
const server = https.createServer(
  { cert: fs.readFileSync(path.join(dir, 'server.pem')), key: fs.readFileSync(path.join(dir, 'server.key')) },
  handle,
);
server.listen(0, '127.0.0.1', () => {
  announce({ port: server.address().port, tls: true });
});
exitWithParent(() => server.close());
