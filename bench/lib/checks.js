'use strict';
// Correctness checks of a peer before it is measured: a real request per scenario kind, with
// its answer checked, and one without the token, which must be refused.
const http = require('node:http');
const { TOKEN, TOKEN_HEADER, SCENARIO_KINDS } = require('./common');

/** One POST on a fresh connection; resolves { status, text, json, headers } (status 0 on a socket error). */
function post(port, urlPath, body, withToken = true, contentType = 'application/json') {
  return new Promise((resolve) => {
    const headers = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
    if (withToken) headers[TOKEN_HEADER] = TOKEN;
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, text, json, headers: res.headers });
        });
      },
    );
    req.on('error', (e) => resolve({ status: 0, text: String(e.message), json: null }));
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/** One real request per scenario kind (`bodies[kind]`); plus one without the token (must be refused). */
async function checkServer(p, scenarios, bodies) {
  const problems = [];
  for (const kind of new Set(scenarios.map((s) => s.kind))) {
    const k = SCENARIO_KINDS[kind];
    const body = bodies[kind];
    const r = await post(p.port, k.path, body);
    if (r.status < 200 || r.status > 299 || !k.check(r.json, body)) {
      problems.push(`${kind}: HTTP ${r.status} ${r.text.slice(0, 160)}`);
    }
  }
  const unauth = await post(p.port, SCENARIO_KINDS.add.path, bodies.add, false);
  const authEnforced = unauth.status === 401 || unauth.status === 403;
  return { ok: problems.length === 0, problems, authEnforced };
}

module.exports = { post, checkServer };
