'use strict';
// TLS test helpers: the fixtures of scripts/make-test-certs.sh, an HTTPS request with a
// given trust and client certificate, and Runner's clients run in a child process that
// trusts the test CA through NODE_EXTRA_CA_CERTS (how Node's fetch is told of a CA).
const fs = require('node:fs');
const path = require('node:path');
const https = require('node:https');
const { spawn } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const DIR = path.join(__dirname, '..', 'fixtures', 'tls');
const PASSPHRASE = 'runner-test-passphrase';

/** A fixture's bytes: ca.pem, server.pem, server.key, server.enc.key, client.*, rogue.*, other.key. */
const pem = (name) => fs.readFileSync(path.join(DIR, name));

/** `tls` for the server: its certificate and key. */
const serverTls = (extra = {}) => ({ cert: pem('server.pem'), key: pem('server.key'), ...extra });

/**
 * One HTTPS request on a connection of its own. Resolves `{ status, headers, body, alpn,
 * authorized }`; rejects with the TLS or socket error.
 */
function httpsRequest(
  url,
  { method = 'POST', headers = {}, body, ca = pem('ca.pem'), cert, key, timeoutMs = 5000 } = {},
) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: ca ?? undefined, cert, key, agent: false }, (res) => {
      const alpn = res.socket.alpnProtocol;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), alpn }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/**
 * Runs `script` (CommonJS; `BASE_URL` and `TOKEN` are defined, `@bluelibs/runner` resolves)
 * in a child Node process, trusting the test CA unless `trustCa` is false; resolves with
 * the JSON it prints last.
 */
function runTrustingChild(script, { baseUrl, token, trustCa = true, timeoutMs = 20000 }) {
  const prelude = `const BASE_URL = ${JSON.stringify(baseUrl)}; const TOKEN = ${JSON.stringify(token)};\n`;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (trustCa) env.NODE_EXTRA_CA_CERTS = path.join(DIR, 'ca.pem');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', prelude + script], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`child exited ${code} without JSON: ${out}${err}`));
      }
    });
  });
}

/** What the child runs: a plain fetch, Runner's createHttpClient and its Node smart client. */
const RUNNER_CLIENTS_SCRIPT = `
const { createHttpClient, createHttpSmartClient, Serializer } = require('@bluelibs/runner');
const settle = (p) => p.then((value) => ({ value }), (e) => ({ error: String(e && (e.cause?.code || e.code || e.message)) }));
(async () => {
  const serializer = new Serializer();
  const auth = { token: TOKEN };
  const fetched = await settle(
    fetch(BASE_URL + '/task/' + encodeURIComponent(TASK), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-runner-token': TOKEN },
      body: JSON.stringify({ input: INPUT }),
    }).then((r) => r.text()),
  );
  const client = await settle(createHttpClient({ baseUrl: BASE_URL, auth, serializer }).task(TASK, INPUT));
  const smart = await settle(createHttpSmartClient({ baseUrl: BASE_URL, auth, serializer }).task(TASK, INPUT));
  console.log(JSON.stringify({ fetched, client, smart }));
})();
`;

/** Runner's clients, from a child process, calling `task` with `input` at `baseUrl`. */
function runnerClients({ baseUrl, token, task, input, trustCa = true }) {
  const script =
    `const TASK = ${JSON.stringify(task)}; const INPUT = ${JSON.stringify(input)};\n` + RUNNER_CLIENTS_SCRIPT;
  return runTrustingChild(script, { baseUrl, token, trustCa });
}

module.exports = { pem, serverTls, httpsRequest, runTrustingChild, runnerClients, PASSPHRASE, TLS_FIXTURES: DIR };
