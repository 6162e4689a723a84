'use strict';
// uWebSockets.js peer (C++ HTTP server with a JS API; the registry build
// @trufflesuite/uws-js-unofficial, which loads on this glibc). The same work as the
// node-http peer: route match, token check, body read, JSON.parse, handler,
// JSON.stringify, the same answer headers; uploads counted chunk by chunk.
const { announce, skip, exitWithParent, handlers, TOKEN, TOKEN_HEADER, JSON_CONTENT_TYPE } = require('../lib/common');

let uWS;
try {
  uWS = require('@trufflesuite/uws-js-unofficial');
} catch (e) {
  skip(`@trufflesuite/uws-js-unofficial not loadable: ${String(e.message).split('\n')[0]}`);
}

const STATUS = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  500: '500 Internal Server Error',
};

// Writes one JSON answer, corked (one syscall), unless the client went away.
function send(res, status, obj) {
  if (res.aborted) return;
  const payload = JSON.stringify(obj);
  res.cork(() => {
    res
      .writeStatus(STATUS[status])
      .writeHeader('content-type', JSON_CONTENT_TYPE)
      .writeHeader('X-Content-Type-Options', 'nosniff')
      .writeHeader('X-Frame-Options', 'DENY')
      .end(payload);
  });
}
const fail = (res, status, message, code) => send(res, status, { ok: false, error: { message, code } });

// The whole body, then `done(buffer)`. uWS lends each chunk only for the callback: copied.
function readBody(res, done) {
  let chunks = null;
  res.onData((ab, isLast) => {
    const chunk = Buffer.from(ab.slice(0));
    if (isLast) {
      done(chunks === null ? chunk : Buffer.concat([...chunks, chunk]));
    } else {
      (chunks || (chunks = [])).push(chunk);
    }
  });
}

function route(kind) {
  return (res, req) => {
    res.onAborted(() => (res.aborted = true));
    // Everything read from `req` must be read before the handler returns.
    const token = req.getHeader(TOKEN_HEADER);
    const id = decodeURIComponent(req.getParameter(0));
    if (kind === 'task' && id === 'bench.upload') {
      if (token !== TOKEN) return fail(res, 401, 'Unauthorized', 'UNAUTHORIZED');
      // Raw body: counted as it streams in, as the other peers' upload task does.
      let bytes = 0;
      res.onData((ab, isLast) => {
        bytes += ab.byteLength;
        if (isLast) send(res, 200, { ok: true, result: { bytes } });
      });
      return;
    }
    if (token !== TOKEN) return fail(res, 401, 'Unauthorized', 'UNAUTHORIZED');
    const fn = kind === 'task' ? handlers.tasks[id] : handlers.events[id];
    if (!fn) return fail(res, 404, 'Not Found', 'NOT_FOUND');
    readBody(res, async (raw) => {
      let body;
      try {
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
  };
}

const app = uWS.App();
app.post('/__runner/task/:id', route('task'));
app.post('/__runner/event/:id', route('event'));
app.any('/*', (res) => {
  res.onAborted(() => (res.aborted = true));
  fail(res, 404, 'Not Found', 'NOT_FOUND');
});
app.listen('127.0.0.1', 0, (listenSocket) => {
  if (!listenSocket) {
    console.error('uws: listen failed');
    process.exit(1);
  }
  announce({ port: uWS.us_socket_local_port(listenSocket) });
  exitWithParent(() => uWS.us_listen_socket_close(listenSocket));
});
