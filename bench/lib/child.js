'use strict';
// Runs one of the load generators of this directory (openloop.js, idleconns.js) as a child
// process, its JSON config as argument, its stdout read line by line.
const path = require('node:path');
const { spawn } = require('node:child_process');
const { onLines } = require('./lines');

/** Spawns bench/lib/{file}; resolves `exited` with { code, err } (err: the last 2000 bytes of its stderr). */
function runChild(file, config, { onStdoutLine } = {}) {
  const child = spawn(process.execPath, [path.join(__dirname, file), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
  child.stdin.on('error', () => {});
  onLines(child.stdout, (line) => {
    if (onStdoutLine) onStdoutLine(line);
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, err })));
  return { child, exited };
}

module.exports = { runChild };
