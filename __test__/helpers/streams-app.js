'use strict';
// The Runner app of the streams suites (ids st.*), the same definition for nodeExposure and
// nativeExposure (helpers/runner-app.js runs it): raw bodies read through
// useExposureContext().req, streamed answers, answers written through useExposureContext().res,
// multipart uploads, and probe tasks that report what a client going away did to them.
// Run as a script (`node streams-app.js memory-server <standalone|runner>`), it is the server
// of the memory tests, in a child process so the parent can read its RSS from /proc.

const fs = require('node:fs');
const { Readable } = require('node:stream');
const { EventEmitter } = require('node:events');
const { r, useExposureContext } = require('@bluelibs/runner');
const { startApp, nativeExposure } = require('./runner-app');
const {
  TOKEN,
  MB,
  PatternSource,
  digestOf,
  digestStream,
  readAll,
  upperCase,
  sleep,
  describeFiles,
} = require('./streams');

/** Events from the app's probe tasks (st.hold, st.infinite): 'record' (rec) on each change. */
const probes = new EventEmitter();

/** The st.* tasks and their typed error: { items, errors }. */
function streamsItems() {
  const rejected = r
    .error('st.errors.rejected')
    .httpCode(422)
    .format((d) => `Rejected: ${d.why}`)
    .build();
  const t = (id, fn) => r.task(id).run(fn).build();
  const ex = () => useExposureContext();
  const tasks = [
    // raw body in
    t('st.rawDigest', async (input) => {
      const { req } = ex();
      const d = await digestStream(req);
      return {
        inputType: input === undefined ? 'undefined' : typeof input,
        contentType: req.headers['content-type'] ?? null,
        ...d,
      };
    }),
    t('st.rawText', async () => (await readAll(ex().req)).toString('utf8')),
    // raw body in, stream out
    t('st.upper', async () => ex().req.pipe(upperCase())),
    // stream out
    t('st.readable', async (input) => Readable.from((input && input.parts) || ['hello ', 'streamed ', 'world'])),
    t('st.streamObj', async (input) => ({
      stream: Readable.from((input && input.parts) || ['a', 'b', 'c']),
      ...(input && input.status !== undefined ? { status: input.status } : {}),
      ...(input && input.contentType !== undefined ? { contentType: input.contentType } : {}),
      ...(input && input.headers !== undefined ? { headers: input.headers } : {}),
    })),
    t('st.download', async (input) => new PatternSource(input.size)),
    // writing through res
    t('st.resWrite', async (input) => {
      const { res } = ex();
      res.writeHead(input.status ?? 200, input.headers ?? {});
      for (const p of input.parts ?? []) res.write(p);
      res.end(input.last);
      return { ignored: true };
    }),
    t('st.resSetHeader', async () => {
      const { res } = ex();
      res.statusCode = 201;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.setHeader('x-written-by', 'task');
      res.write('line 1\n');
      res.end('line 2\n');
      return 'ignored';
    }),
    t('st.throwMidStream', async () => {
      const { res } = ex();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial ');
      await sleep(20);
      throw new Error('boom mid-stream');
    }),
    // multipart
    t('st.files', async (input) => describeFiles(input)),
    t('st.filesViaStream', async (input) => describeFiles(input, { readVia: 'stream' })),
    t('st.fileTemp', async (input) => {
      const { path: p, bytesWritten } = await input.file.toTempFile();
      const content = await fs.promises.readFile(p);
      await fs.promises.unlink(p);
      return { bytesWritten, bytes: content.length, sha256: digestOf(content).sha256, name: input.file.name };
    }),
    t('st.filesThenReject', async (input) => {
      await describeFiles(input);
      rejected.throw({ why: 'files were read' });
    }),
    t('st.filesThenStream', async (input) => {
      const d = await describeFiles(input);
      return { stream: Readable.from([JSON.stringify(d)]), contentType: 'application/x-ndjson' };
    }),
    // probes for client disconnects (records observed by the tests through `probes`)
    t('st.hold', async () => {
      const { req, signal } = ex();
      const rec = { task: 'st.hold', signalAborted: false, reqClosed: false, outcome: null, received: 0 };
      const emit = () => probes.emit('record', rec);
      signal.addEventListener('abort', () => {
        rec.signalAborted = true;
        emit();
      });
      req.on('close', () => {
        rec.reqClosed = true;
        emit();
      });
      try {
        for await (const c of req) {
          rec.received += c.length;
          emit();
        }
        rec.outcome = 'ended';
      } catch {
        rec.outcome = 'error';
      }
      emit();
      return { received: rec.received };
    }),
    t('st.infinite', async () => {
      const { signal } = ex();
      const src = new PatternSource(Infinity);
      const rec = { task: 'st.infinite', signalAborted: false, sourceDestroyed: false, source: src };
      const emit = () => probes.emit('record', rec);
      signal.addEventListener('abort', () => {
        rec.signalAborted = true;
        emit();
      });
      src.on('close', () => {
        rec.sourceDestroyed = true;
        emit();
      });
      emit();
      return src;
    }),
    // plain JSON, as a control
    t('st.add', async ({ a, b }) => a + b),
  ];
  return { items: [rejected, ...tasks], errors: { rejected } };
}

/**
 * Runs the streams app exposed by `exposure` (nodeExposure or nativeExposure) with `http`
 * (auth and open exposure are filled in). Resolves startApp's handle plus `errors`.
 */
async function startStreamsApp(exposure, http = {}) {
  const { items, errors } = streamsItems();
  const app = await startApp(exposure, {
    id: 'st.app',
    http: { auth: { token: TOKEN }, dangerouslyAllowOpenExposure: true, ...http },
    items,
  });
  return { ...app, errors };
}

// ---------------------------------------------------------------------------------------------
// child-process server for the memory tests

async function memoryServer(mode) {
  const limits = { multipart: { fileSize: 1024 * MB, files: 4, fields: 10, fieldSize: MB } };
  const sink = async (req) => digestStream(req);
  const uploadDigest = async (input) => {
    const { stream } = await input.file.resolve();
    const d = await digestStream(stream);
    return { ...d, name: input.file.name };
  };
  let port;
  if (mode === 'standalone') {
    // eslint-disable-next-line global-require
    const { TunnelServer } = require('../..');
    const server = new TunnelServer({
      port: 0,
      host: '127.0.0.1',
      auth: { token: TOKEN },
      limits,
      logger: { error() {}, warn() {} },
    });
    server.registerTask('mem.sink', async (_input, ctx) => sink(ctx.req));
    server.registerTask('mem.upload', async (input) => uploadDigest(input));
    server.registerTask('mem.download', async (input) => ({
      stream: new PatternSource(input.size),
      contentType: 'application/octet-stream',
    }));
    port = (await server.listen()).port;
  } else {
    const task = (id, fn) => r.task(id).run(fn).build();
    const app = await startApp(nativeExposure, {
      id: 'mem.app',
      http: { auth: { token: TOKEN }, dangerouslyAllowOpenExposure: true, limits },
      items: [
        task('mem.sink', async () => sink(useExposureContext().req)),
        task('mem.upload', async (input) => uploadDigest(input)),
        task('mem.download', async (input) => new PatternSource(input.size)),
      ],
    });
    port = app.port;
  }
  process.on('message', (m) => {
    if (m === 'gc' && global.gc) {
      global.gc();
      process.send({ gc: true });
    } else if (m === 'mem') {
      process.send({ mem: process.memoryUsage() });
    } else if (m === 'exit') {
      process.exit(0);
    }
  });
  process.send({ port });
}

if (require.main === module && process.argv[2] === 'memory-server') {
  memoryServer(process.argv[3] || 'standalone').catch((e) => {
    // eslint-disable-next-line no-console
    console.error(e);
    process.exit(1);
  });
}

module.exports = { streamsItems, startStreamsApp, probes };
