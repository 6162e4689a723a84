'use strict';
// Fastify peer: same routes and headers; Fastify's own JSON body parser and serializer.
const Fastify = require('fastify');
const { handlers, announce, exitWithParent, TOKEN, TOKEN_HEADER, JSON_CONTENT_TYPE } = require('../lib/common');

const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });

// Idiomatic Fastify: send the object, Fastify serializes it (JSON.stringify without a schema).
function reply(rep, status, obj) {
  rep
    .code(status)
    .header('content-type', JSON_CONTENT_TYPE)
    .header('X-Content-Type-Options', 'nosniff')
    .header('X-Frame-Options', 'DENY');
  return rep.send(obj);
}

app.addHook('onRequest', async (req, rep) => {
  if (req.headers[TOKEN_HEADER] !== TOKEN) {
    return reply(rep, 401, { ok: false, error: { message: 'Unauthorized', code: 'UNAUTHORIZED' } });
  }
});

app.post('/__runner/task/:id', async (req, rep) => {
  const fn = handlers.tasks[req.params.id];
  if (!fn) return reply(rep, 404, { ok: false, error: { message: 'Not Found', code: 'NOT_FOUND' } });
  const result = await fn(req.body ? req.body.input : undefined);
  return reply(rep, 200, { ok: true, result });
});

app.post('/__runner/event/:id', async (req, rep) => {
  const fn = handlers.events[req.params.id];
  if (!fn) return reply(rep, 404, { ok: false, error: { message: 'Not Found', code: 'NOT_FOUND' } });
  await fn(req.body ? req.body.payload : undefined);
  return reply(rep, 200, { ok: true });
});

app.listen({ port: 0, host: '127.0.0.1' }).then(() => {
  announce({ port: app.server.address().port });
});
exitWithParent(() => app.close());
