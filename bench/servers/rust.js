'use strict';
// Rust-only peer: the rust_alone example binary (same protocol, Rust handlers, no JS).
// This wrapper starts it and reports the binary's own pid, so the harness reads the
// binary's CPU and RSS, not this wrapper's.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { announce, skip, exitWithParent, freePort, waitForPort, ROOT } = require('../lib/common');

const bin = process.env.BENCH_RUST_BIN || path.join(ROOT, 'target', 'release', 'examples', 'rust_alone');
if (!fs.existsSync(bin)) {
  skip(`${path.relative(ROOT, bin)} not built (cargo build --release --example rust_alone --no-default-features)`);
}

(async () => {
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (d) => process.stderr.write(d));
  child.on('exit', (code, sig) => {
    console.error(`rust_alone exited (code ${code}, signal ${sig})`);
    process.exit(1);
  });
  await waitForPort(port);
  announce({ port, pid: child.pid });
  exitWithParent(() => child.kill('SIGKILL'));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
