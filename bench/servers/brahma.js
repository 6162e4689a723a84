'use strict';
// brahma-firelight peer (Rust hyper server, Express-like JS routing). Its listen()
// needs an explicit port and has no "bound" callback, so we pre-pick a free port
// and poll until it accepts connections. Bodies arrive as raw Buffers.
const {
  announce,
  skip,
  exitWithParent,
  freePort,
  waitForPort,
  handlers,
  TOKEN,
  TOKEN_HEADER,
  JSON_CONTENT_TYPE,
} = require('../lib/common');

let createApp;
try {
  ({ createApp } = require('brahma-firelight'));
} catch (e) {
  skip(`brahma-firelight not loadable: ${String(e.message).split('\n')[0]}`);
}

const HEADERS = {
  'content-type': JSON_CONTENT_TYPE,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};
function send(res, status, obj) {
  res.send({ status, headers: HEADERS, body: JSON.stringify(obj) });
}
const fail = (res, status, message, code) => send(res, status, { ok: false, error: { message, code } });

function route(kind) {
  return async (req, res) => {
    if (req.headers[TOKEN_HEADER] !== TOKEN) return fail(res, 401, 'Unauthorized', 'UNAUTHORIZED');
    const fn = kind === 'task' ? handlers.tasks[req.params.id] : handlers.events[req.params.id];
    if (!fn) return fail(res, 404, 'Not Found', 'NOT_FOUND');
    let body;
    try {
      const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : String(req.body || '');
      body = raw ? JSON.parse(raw) : {};
    } catch {
      return fail(res, 400, 'Invalid JSON body', 'INVALID_JSON');
    }
    try {
      if (kind === 'task') send(res, 200, { ok: true, result: await fn(body.input) });
      else {
        await fn(body.payload);
        send(res, 200, { ok: true });
      }
    } catch (e) {
      fail(res, 500, String((e && e.message) || e), 'INTERNAL_ERROR');
    }
  };
}

(async () => {
  const app = createApp();
  app.post('/__runner/task/:id', route('task'));
  app.post('/__runner/event/:id', route('event'));
  const port = await freePort();
  app.listen('127.0.0.1', port);
  await waitForPort(port);
  announce({ port });
  exitWithParent();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
