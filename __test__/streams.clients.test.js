'use strict';
// Runner's Node clients, unchanged, against the streams app (helpers/streams-app.js) exposed by
// nativeExposure, and by nodeExposure as a control that the expectations are right:
// createHttpSmartClient / createHttpMixedClient uploading createNodeFile(...) files (buffer and
// stream sources), duplex calls with a Readable input and a streamed answer, JSON calls.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');
const { Serializer, createHttpSmartClient, createHttpMixedClient, createNodeFile } = require('@bluelibs/runner');
const { nodeExposure, nativeExposure } = require('./helpers/runner-app');
const { startStreamsApp } = require('./helpers/streams-app');
const S = require('./helpers/streams');

const { TOKEN, MB } = S;

for (const [label, exposure] of [
  ['nativeExposure', nativeExposure],
  ['nodeExposure (control)', nodeExposure],
]) {
  describe(`Runner Node clients with streams against ${label}`, () => {
    let app;
    const serializer = new Serializer();
    before(async () => {
      app = await startStreamsApp(exposure, {
        limits: { multipart: { fileSize: 64 * MB, files: 10, fields: 100, fieldSize: MB } },
      });
    });
    after(async () => app && app.close());

    const cfg = () => ({
      baseUrl: app.baseUrl,
      auth: { token: TOKEN },
      serializer,
      timeoutMs: 30000,
      errorRegistry: new Map([[app.errors.rejected.id, app.errors.rejected]]),
    });

    for (const [clientName, make] of [
      ['createHttpSmartClient', (c) => createHttpSmartClient(c)],
      ['createHttpMixedClient', (c) => createHttpMixedClient(c)],
    ]) {
      describe(clientName, () => {
        const client = () => make(cfg());

        it('JSON call', async () => {
          assert.equal(await client().task('st.add', { a: 2, b: 40 }), 42);
        });

        it('createNodeFile with a buffer source', async () => {
          const out = await client().task('st.files', {
            title: 'buffer upload',
            doc: createNodeFile(
              { name: 'hello.txt', type: 'text/plain' },
              { buffer: Buffer.from('hello from a buffer') },
              'DOC',
            ),
          });
          assert.deepEqual(out.shape, { title: 'buffer upload', doc: { $file: 0 } });
          assert.equal(out.files.length, 1);
          assert.equal(out.files[0].name, 'hello.txt');
          assert.equal(out.files[0].type, 'text/plain');
          assert.equal(out.files[0].text, 'hello from a buffer');
        });

        it('createNodeFile with a 4 MB stream source (generated on the fly)', async () => {
          const size = 4 * MB;
          const out = await client().task('st.files', {
            f: createNodeFile(
              { name: 'big.bin', type: 'application/octet-stream', size },
              { stream: new S.PatternSource(size) },
              'BIG',
            ),
          });
          assert.equal(out.files[0].name, 'big.bin');
          assert.equal(out.files[0].size, size);
          assert.equal(out.files[0].bytes, size);
          assert.equal(out.files[0].sha256, S.expectedDigest(size).sha256);
        });

        it('several files (buffer + stream) nested in the input', async () => {
          const out = await client().task('st.files', {
            list: [
              createNodeFile({ name: 'a.txt', type: 'text/plain' }, { buffer: Buffer.from('AAA') }, 'A'),
              {
                inner: createNodeFile(
                  { name: 'b.txt', type: 'text/plain' },
                  { stream: Readable.from(['B', 'B', 'B']) },
                  'B',
                ),
              },
            ],
            n: 7,
          });
          assert.deepEqual(out.shape, { list: [{ $file: 0 }, { inner: { $file: 1 } }], n: 7 });
          assert.deepEqual(
            out.files.map((f) => [f.name, f.text]),
            [
              ['a.txt', 'AAA'],
              ['b.txt', 'BBB'],
            ],
          );
        });

        it('toTempFile() on an uploaded file', async () => {
          const size = 300 * 1024;
          const out = await client().task('st.fileTemp', {
            file: createNodeFile({ name: 'tmp.bin' }, { stream: new S.PatternSource(size) }, 'T'),
          });
          assert.deepEqual(out, { bytesWritten: size, ...S.expectedDigest(size), name: 'tmp.bin' });
        });

        it('a multipart call answered with a stream returns a Readable', async () => {
          const out = await client().task('st.filesThenStream', {
            f: createNodeFile({ name: 's.txt' }, { buffer: Buffer.from('back') }, 'S'),
          });
          assert.equal(typeof out.pipe, 'function', 'expected a Readable');
          const described = JSON.parse((await S.readAll(out)).toString('utf8'));
          assert.equal(described.files[0].text, 'back');
        });

        it('a typed error after a multipart upload is rethrown as the typed error', async () => {
          await assert.rejects(
            client().task('st.filesThenReject', {
              f: createNodeFile({ name: 'r.txt' }, { buffer: Buffer.from('r') }, 'R'),
            }),
            (e) => {
              assert.ok(app.errors.rejected.is(e), `expected the typed error, got ${e && e.name}: ${e && e.message}`);
              assert.deepEqual(e.data, { why: 'files were read' });
              return true;
            },
          );
        });

        it('duplex: Readable input, streamed upper-cased answer', async () => {
          const out = await client().task('st.upper', Readable.from(['hello ', 'duplex ', 'client']));
          assert.equal(typeof out.pipe, 'function', 'expected a Readable');
          assert.equal((await S.readAll(out)).toString(), 'HELLO DUPLEX CLIENT');
        });

        it('duplex: 4 MB through the upper-casing echo', async () => {
          const size = 4 * MB;
          const out = await client().task('st.upper', new S.PatternSource(size));
          const got = await S.within(S.readAll(out), 30000, 'echo');
          assert.equal(got.length, size);
          assert.ok(got.equals(S.upperBytes(S.patternBytes(size))), 'echoed bytes differ');
        });

        it('Readable input to a task answering JSON', async () => {
          const size = 2 * MB;
          const out = await client().task('st.rawDigest', new S.PatternSource(size));
          assert.deepEqual(out, {
            inputType: 'undefined',
            contentType: 'application/octet-stream',
            ...S.expectedDigest(size),
          });
        });
      });
    }
  });
}
