'use strict';
// Plain node:http peer: the same work nodeExposure's hot path has to do (route match,
// token check, body read, JSON.parse, handler, JSON.stringify, same headers), no framework.
const http = require('node:http');
const {
  handlers,
  announce,
  exitWithParent,
  TOKEN,
  TOKEN_HEADER,
  JSON_CONTENT_TYPE,
  countBytes,
} = require('../lib/common');

const TASK_PREFIX = '/__runner/task/';
const EVENT_PREFIX = '/__runner/event/';

function send(res, status, obj) {
  const payload = Buffer.from(JSON.stringify(obj), 'utf8');
  res.statusCode = status;
  res.setHeader('content-type', JSON_CONTENT_TYPE);
  res.setHeader('content-length', String(payload.length));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.end(payload);
}
const fail = (res, status, message, code) => send(res, status, { ok: false, error: { message, code } });

/** The request handler; node-https.js serves it over TLS. */
function handle(req, res) {
  const url = req.url;
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  let kind, fn;
  if (pathname === TASK_PREFIX + 'bench.upload') {
    // Raw body: the task streams it, as nodeExposure's octet-stream path does.
    if (req.headers[TOKEN_HEADER] !== TOKEN) return fail(res, 401, 'Unauthorized', 'UNAUTHORIZED');
    countBytes(req).then(
      (bytes) => send(res, 200, { ok: true, result: { bytes } }),
      () => res.destroy(),
    );
    return;
  }
  if (pathname.startsWith(TASK_PREFIX)) {
    kind = 'task';
    fn = handlers.tasks[decodeURIComponent(pathname.slice(TASK_PREFIX.length))];
  } else if (pathname.startsWith(EVENT_PREFIX)) {
    kind = 'event';
    fn = handlers.events[decodeURIComponent(pathname.slice(EVENT_PREFIX.length))];
  } else {
    return fail(res, 404, 'Not Found', 'NOT_FOUND');
  }
  if (req.method !== 'POST') return fail(res, 405, 'Method Not Allowed', 'METHOD_NOT_ALLOWED');
  if (req.headers[TOKEN_HEADER] !== TOKEN) return fail(res, 401, 'Unauthorized', 'UNAUTHORIZED');
  if (!fn) return fail(res, 404, 'Not Found', 'NOT_FOUND');

  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } catch {
      return fail(res, 400, 'Invalid JSON body', 'INVALID_JSON');
    }
    try {
      if (kind === 'task') {
        const result = await fn(body.input);
        send(res, 200, { ok: true, result });
      } else {
        await fn(body.payload);
        send(res, 200, { ok: true });
      }
    } catch (e) {
      fail(res, 500, String((e && e.message) || e), 'INTERNAL_ERROR');
    }
  });
}

module.exports = { handle };

if (require.main === module) {
  const server = http.createServer(handle);
  server.listen(0, '127.0.0.1', () => {
    announce({ port: server.address().port });
  });
  exitWithParent(() => server.close());
}
