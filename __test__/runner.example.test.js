'use strict';
// examples/runner-app.js runs, talks to its own native server with Runner's client, and exits.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');

it('examples/runner-app.js runs to completion', async () => {
  const script = path.join(__dirname, '..', 'examples', 'runner-app.js');
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(
      process.execPath,
      [script],
      { env: { ...process.env, PORT: '0' }, timeout: 30000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /Runner app served natively at http:\/\/127\.0\.0\.1:\d+\/__runner/);
  assert.match(stdout, /add {5}-> \{ sum: 3 \}/);
  assert.match(stdout, /buy {5}-> \{ sku: 'A-1', qty: 1, by: 'Ada', at: \d{4}-/);
  assert.match(stdout, /buy 9 {3}-> typed error shop\.errors\.outOfStock: Out of stock: A-1/);
  assert.match(stdout, /ordered -> \{ id: 7, confirmed: true \}/);
});
