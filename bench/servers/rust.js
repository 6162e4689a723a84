'use strict';
// Rust-only peer: the rust_alone example binary (same protocol, Rust handlers, no JS).
// This wrapper starts it and reports the binary's own pid, so the harness reads the
// binary's CPU and RSS, not this wrapper's.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { announce, skip, exitWithParent, freePort, waitForPort, ROOT } = require('../lib/common');

const bin = process.env.BENCH_RUST_BIN || path.join(ROOT, 'target', 'release', 'examples', 'rust_alone');
if (!fs.existsSync(bin)) {
  skip(`${path.relative(ROOT, bin)} not built (cargo build --release --example rust_alone --no-default-features)`);
}

// HTTP worker threads: by default the addon's own layout (one per core but the one the JS
// thread needs, at least one), so the gap between the two is what crossing into JS costs
// and nothing else. On this 2-core machine that is also Rust alone's fastest layout for
// small requests (with one worker per core it competes with the load generator for both
// cores); for the 16 KB echo, where its own JSON work dominates, two are faster.
const workers = Number(process.env.BENCH_RUST_THREADS) || Math.max(1, os.availableParallelism() - 1);

(async () => {
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--threads', String(workers)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout.on('data', (d) => process.stderr.write(d));
  child.on('exit', (code, sig) => {
    console.error(`rust_alone exited (code ${code}, signal ${sig})`);
    process.exit(1);
  });
  await waitForPort(port);
  announce({ port, pid: child.pid, workers });
  exitWithParent(() => child.kill('SIGKILL'));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
