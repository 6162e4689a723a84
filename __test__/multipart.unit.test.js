'use strict';
// multipart.js (the multipart/form-data task-input parser), compared with Runner's own nodeExposure.
//
// Every body in `CASES` is sent over HTTP to a real Runner app exposing a task through
// `nodeExposure` (the reference) and fed, as a Node Readable (whole, in 1..7-byte pieces, and
// slowly), to `parseMultipart`, followed by what the reference's createTaskHandler does with it
// (run the task while files stream, await `finalize`, sanitize the error response). Both sides run
// the same task, which reads its files with Runner's `readInputFileToBuffer` and returns their
// contents and metadata. The answers (status + JSON body) must be equal.
// Then parser-only tests: abort, stream() twice, toTempFile, a 50 MB upload through backpressure.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { Readable } = require('node:stream');
const v8 = require('node:v8');
const vm = require('node:vm');
const { readInputFileToBuffer, Serializer, Errors } = require('@bluelibs/runner');
const { startReference, request, JSON_SERIALIZER, TOKEN } = require('./helpers');
const { multipartBuffer, fileSentinel, manifestPart, filePart, fileShape } = require('./helpers/streams');
const { parseMultipart, InputFile, isMultipart, toHttpResponse, DEFAULT_LIMITS } = require('../lib/multipart');

const TASK_ID = 'mp.echo';
const BOUNDARY = 'ThIsIsThEbOuNdArY-1234';
const CT = `multipart/form-data; boundary=${BOUNDARY}`;

// ---------------------------------------------------------------------------------------------
// bodies

/** parts as helpers/streams.js multipartBuffer's, with this file's boundary. */
const encode = (parts, opts = {}) => multipartBuffer(parts, { boundary: BOUNDARY, ...opts });
const S = fileSentinel;
const manifest = (input) => manifestPart(input);
const file = filePart;

// ---------------------------------------------------------------------------------------------
// the task both sides run

async function readFile(f) {
  // A stream destroyed before the task got to it would never emit again: fail instead of hanging
  // (on both sides alike).
  if (f._stream && f._stream.destroyed) throw new Error('file stream destroyed');
  return readInputFileToBuffer(f);
}

async function echoTask(input) {
  const { shape, files } = fileShape(input, { protos: true });
  const described = [];
  for (const f of files) {
    const content = await readFile(f);
    described.push({
      keys: Object.keys(f),
      name: f.name,
      type: f.type,
      size: f.size,
      lastModified: f.lastModified,
      extra: f.extra,
      content: content.toString('latin1'),
    });
  }
  return { inputType: input === undefined ? 'undefined' : typeof input, shape, files: described };
}

// ---------------------------------------------------------------------------------------------
// the two sides

const json = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

async function referenceAnswer(ref, body, contentType = CT) {
  const res = await request(`${ref.url}/__runner/task/${TASK_ID}`, {
    headers: { 'content-type': contentType, 'content-length': String(body.length), 'x-runner-token': TOKEN },
    body,
  });
  return { status: res.status, body: res.json() };
}

/** What the reference's createTaskHandler does with parseMultipartInput's result. */
async function localAnswer(req, headers, opts) {
  const encode = (v) => JSON.parse(opts.serializer.stringify(v));
  const parsed = await parseMultipart(req, headers, opts);
  if (!parsed.ok) return json(toHttpResponse(parsed.response));
  let result;
  let taskError;
  try {
    result = await echoTask(parsed.value);
  } catch (err) {
    taskError = err;
  }
  const fin = await parsed.finalize;
  if (!fin.ok) return json(toHttpResponse(fin.response));
  if (taskError)
    return { status: 500, body: { ok: false, error: { message: 'Internal Error', code: 'INTERNAL_ERROR' } } };
  return { status: 200, body: encode({ ok: true, result }) };
}

function sizes(mode) {
  if (mode === 'tiny') {
    let i = 0;
    return () => 1 + ((i++ * 5) % 7);
  }
  if (mode === 'slow') return () => 13;
  if (mode === 'chunks64k') return () => 65536;
  return () => Infinity;
}

/** A Readable of `body` in pieces; 'slow' hands out each piece on a later turn of the event loop. */
function feed(body, mode = 'whole') {
  const next = sizes(mode);
  let off = 0;
  return new Readable({
    read() {
      const piece = off >= body.length ? null : body.subarray(off, Math.min(body.length, off + next()));
      if (piece) off += piece.length;
      if (mode === 'slow') setImmediate(() => this.push(piece));
      else this.push(piece);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// cases: [title, body, { limits, serializer: 'json' | 'runner', contentType, modes }]

const FILE_A = 'hello, file A\r\n--not-a-boundary\r\n\u0000\u00ff end';
const FILE_B = 'second file: ' + 'b'.repeat(3000);
const bigField = 'x'.repeat(1024 * 1024 + 10);

const CASES = [
  [
    'one file',
    encode([
      manifest({ doc: S('f1', { name: 'a.txt', type: 'text/plain' }), note: 'x' }),
      file('f1', FILE_A, 'a.txt', 'text/plain'),
    ]),
  ],
  [
    'two files, nested in arrays and objects, other values kept',
    encode([
      manifest({
        docs: [S('a', { name: 'a.txt' }), { inner: { deep: S('b') } }],
        n: 1,
        list: [1, 'x', null, true, { y: [] }],
      }),
      file('a', FILE_A, 'part-a.txt', 'text/plain'),
      file('b', FILE_B, 'part-b.txt', 'text/csv'),
    ]),
  ],
  ['input is the sentinel itself', encode([manifest(S('only', { name: 'o.txt' })), file('only', 'o')])],
  [
    'manifest metadata overrides the part; the part fills what the manifest left out',
    encode([
      manifest({
        full: S('m1', {
          name: 'manifest.txt',
          type: 'application/json',
          size: 5,
          lastModified: 1700000000000,
          extra: { k: 1 },
        }),
        typeOnly: S('m2', { type: 'image/gif' }),
        none: S('m3'),
        emptyMeta: S('m4', {}),
      }),
      file('m1', 'one', 'part.bin', 'image/png'),
      file('m2', 'two', 'part2.png', 'image/png'),
      file('m3', 'three', 'part3.csv', 'text/csv'),
      file('m4', 'four', 'part4.csv', 'text/csv'),
    ]),
  ],
  [
    'file part before the manifest (manifest metadata still wins)',
    encode([
      file('early', 'early data', 'early-part.txt', 'text/plain'),
      manifest({ f: S('early', { name: 'from-manifest.txt' }) }),
    ]),
  ],
  [
    'the same id twice in the manifest is one file',
    encode([manifest({ a: S('same', { name: 's.txt' }), b: [S('same', { type: 'text/x' })] }), file('same', 'shared')]),
  ],
  [
    'file part without filename but application/octet-stream; part without file: prefix; undeclared file part',
    encode([
      manifest({ f: S('nofn') }),
      { name: 'file:nofn', type: 'application/octet-stream', data: 'no filename' },
      file('undeclared', 'nobody asked'),
      { name: 'avatar', filename: 'x.png', type: 'image/png', data: 'ignored' },
      { name: 'other', value: 'plain field' },
    ]),
  ],
  ['manifest without input', encode([{ name: '__manifest', value: '{}' }])],
  ['manifest is an array', encode([{ name: '__manifest', value: '[1,2]' }])],
  ['empty file', encode([manifest({ f: S('e', { name: 'e' }) }), file('e', '')])],
  ['missing manifest (only a field)', encode([{ name: 'other', value: '1' }])],
  ['missing manifest (only a file)', encode([file('a', 'data')])],
  ['missing manifest (no parts at all)', encode([])],
  ['empty manifest field', encode([{ name: '__manifest', value: '' }])],
  ['invalid manifest JSON', encode([{ name: '__manifest', value: '{"input":' }, file('a', 'x')])],
  ['manifest is a number', encode([{ name: '__manifest', value: '42' }])],
  ['manifest is null', encode([{ name: '__manifest', value: 'null' }])],
  ['manifest is a string', encode([{ name: '__manifest', value: '"input"' }])],
  ['two manifest fields (the reference concatenates them)', encode([manifest({ a: 1 }), manifest({ b: 2 })])],
  ['declared file whose part never comes', encode([manifest({ f: S('ghost', { name: 'g.txt' }) })])],
  ['one of two declared files never comes', encode([manifest({ a: S('a'), b: S('b') }), file('a', 'here')])],
  [
    'files limit: manifest declares more files',
    encode([manifest({ a: S('a'), b: S('b') }), file('a', '1'), file('b', '2')]),
    { limits: { files: 1 } },
  ],
  [
    'files limit: more file parts than allowed',
    encode([manifest({ a: S('a') }), file('a', '1'), file('b', '2')]),
    { limits: { files: 1 } },
  ],
  ['files limit: exactly at the limit', encode([manifest({ a: S('a') }), file('a', '1')]), { limits: { files: 1 } }],
  ['fields limit', encode([manifest({ a: 1 }), { name: 'x', value: 'y' }]), { limits: { fields: 1 } }],
  ['fieldSize limit on the manifest', encode([manifest({ text: 'y'.repeat(200) })]), { limits: { fieldSize: 64 } }],
  [
    'fieldSize limit on two manifest fields together',
    encode([manifest({ t: 'a'.repeat(20) }), { name: '__manifest', value: '{"b":"' + 'c'.repeat(30) + '"}' }]),
    { limits: { fieldSize: 64 } },
  ],
  [
    'fieldSize limit on another field',
    encode([manifest({ a: 1 }), { name: 'x', value: 'z'.repeat(100) }]),
    { limits: { fieldSize: 64 } },
  ],
  [
    'default fieldSize (1 MB) on another field',
    encode([manifest({ a: 1 }), { name: 'big', value: bigField }]),
    { modes: ['whole', 'chunks64k'] },
  ],
  ['fileSize limit', encode([manifest({ f: S('f') }), file('f', 'q'.repeat(100))]), { limits: { fileSize: 16 } }],
  [
    'fileSize limit: exactly at the limit',
    encode([manifest({ f: S('f') }), file('f', 'q'.repeat(16))]),
    { limits: { fileSize: 16 } },
  ],
  [
    'parts limit',
    encode([manifest({ a: S('a'), b: S('b') }), file('a', '1'), file('b', '2')]),
    { limits: { parts: 2 } },
  ],
  [
    'user limits replace the defaults (no files limit left)',
    encode([manifest({ a: 1 }), ...Array.from({ length: 12 }, (_, i) => file(`u${i}`, `${i}`))]),
    { limits: { parts: 100 } },
  ],
  [
    'default files limit (10)',
    encode([manifest({ a: 1 }), ...Array.from({ length: 11 }, (_, i) => file(`u${i}`, `${i}`))]),
  ],
  ['content-type without boundary', encode([manifest({ a: 1 })]), { contentType: 'multipart/form-data' }],
  [
    'boundary in the header differs from the body',
    encode([manifest({ a: 1 })]),
    { contentType: 'multipart/form-data; boundary=other' },
  ],
  [
    'content-type that only mentions multipart/form-data',
    encode([manifest({ a: 1 })]),
    { contentType: 'text/plain; x="multipart/form-data"' },
  ],
  ['body ends inside the manifest (no closing boundary)', encode([manifest({ a: 1 })]).subarray(0, 60)],
  [
    'body ends inside a file (no closing boundary)',
    encode([manifest({ f: S('f') }), file('f', 'f'.repeat(50))], { close: false }).subarray(0, -20),
  ],
  [
    'malformed part header',
    encode([manifest({ a: 1 }), { raw: `--${BOUNDARY}\r\nno-colon-here\u0001\r\n\r\nxx\r\n` }]),
  ],
  [
    'part without content-disposition is skipped',
    encode([{ raw: `--${BOUNDARY}\r\nX-Other: 1\r\n\r\nxx\r\n` }, manifest({ a: 2 })]),
  ],
  [
    "Runner's Serializer: class instances in the input become plain objects",
    encode([
      {
        name: '__manifest',
        value: new Serializer().stringify({ input: { when: new Date(0), f: S('f', { name: 'r.txt' }) } }),
      },
      file('f', 'rs'),
    ]),
    { serializer: 'runner' },
  ],
];

// ---------------------------------------------------------------------------------------------

describe('multipart: same answers as the reference nodeExposure', () => {
  const refs = new Map();
  const refKey = (o) => JSON.stringify([o.limits ?? null, o.serializer ?? 'json']);

  before(async () => {
    for (const [, , o = {}] of CASES) {
      const key = refKey(o);
      if (refs.has(key)) continue;
      refs.set(
        key,
        await startReference(
          { tasks: { [TASK_ID]: (input) => echoTask(input) } },
          {
            exposure: 'open',
            auth: { token: TOKEN },
            limits: o.limits ? { multipart: o.limits } : undefined,
            serializer: o.serializer,
          },
        ),
      );
    }
  });
  after(async () => {
    await Promise.allSettled([...refs.values()].map((r) => r.close()));
  });

  for (const [title, body, o = {}] of CASES) {
    it(title, async () => {
      const contentType = o.contentType ?? CT;
      const expected = await referenceAnswer(refs.get(refKey(o)), body, contentType);
      const serializer = o.serializer === 'runner' ? new Serializer() : JSON_SERIALIZER;
      for (const mode of o.modes ?? ['whole', 'tiny', 'slow']) {
        const got = await localAnswer(
          feed(body, mode),
          { 'content-type': contentType },
          { serializer, limits: o.limits },
        );
        assert.deepStrictEqual(got, expected, `${title} [${mode}]`);
      }
    });
  }

  it('a body encoded by FormData (as fetch sends it)', async () => {
    const fd = new FormData();
    fd.append('__manifest', JSON.stringify({ input: { pic: S('p', { extra: { by: 'fd' } }), list: [S('q')] } }));
    fd.append('file:p', new Blob(['PNG bytes'], { type: 'image/png' }), 'pic.png');
    fd.append('file:q', new Blob(['no type']));
    const res = new Response(fd);
    const contentType = res.headers.get('content-type');
    const body = Buffer.from(await res.arrayBuffer());
    const expected = await referenceAnswer(refs.get(refKey({})), body, contentType);
    assert.equal(expected.status, 200);
    for (const mode of ['whole', 'tiny', 'slow']) {
      const got = await localAnswer(feed(body, mode), { 'content-type': contentType }, { serializer: JSON_SERIALIZER });
      assert.deepStrictEqual(got, expected, mode);
    }
  });

  it('the reference answers these cases as expected (the harness sees what it claims to)', async () => {
    const ask = (i) =>
      referenceAnswer(refs.get(refKey(CASES[i][2] ?? {})), CASES[i][1], CASES[i][2]?.contentType ?? CT);
    const byTitle = (t) => CASES.findIndex(([title]) => title === t);
    const one = await ask(byTitle('one file'));
    assert.equal(one.status, 200);
    assert.equal(one.body.result.files[0].content, Buffer.from(FILE_A).toString('latin1'));
    assert.deepEqual((await ask(byTitle('declared file whose part never comes'))).body, {
      ok: false,
      error: { message: 'Internal Error', code: 'MISSING_FILE_PART' },
    });
    assert.equal((await ask(byTitle('fileSize limit'))).body.error.message, 'File size limit exceeded');
    assert.equal((await ask(byTitle('parts limit'))).body.error.message, 'Parts limit exceeded');
  });
});

// ---------------------------------------------------------------------------------------------

describe('multipart: parser results', () => {
  const opts = { serializer: JSON_SERIALIZER };

  it('isMultipart', () => {
    assert.equal(isMultipart('multipart/form-data; boundary=x'), true);
    assert.equal(isMultipart('Multipart/Form-Data'), true);
    assert.equal(isMultipart('application/json'), false);
    assert.equal(isMultipart(undefined), false);
    assert.deepEqual(DEFAULT_LIMITS, { fileSize: 20 * 1024 * 1024, files: 10, fields: 100, fieldSize: 1024 * 1024 });
  });

  it('raw responses are the reference’s (before sanitizing)', async () => {
    const cases = [
      [encode([manifest({ f: S('ghost') })]), 500, 'Missing file part for id ghost', 'MISSING_FILE_PART', true],
      [encode([{ name: '__manifest', value: 'nope' }]), 400, 'Invalid manifest', 'INVALID_MULTIPART', false],
      [encode([{ name: 'x', value: 'y' }]), 400, 'Missing manifest', 'MISSING_MANIFEST', false],
      [
        encode([manifest({ f: S('f') }), file('f', 'x')], { close: false }).subarray(0, -3),
        500,
        'Multipart stream error',
        'STREAM_ERROR',
        true,
      ],
    ];
    for (const [body, status, message, code, viaFinalize] of cases) {
      const r = await parseMultipart(feed(body), { 'content-type': CT }, opts);
      assert.equal(r.ok, viaFinalize, message);
      let response = r.response;
      if (r.ok) {
        r.value.f.stream().resume();
        response = (await r.finalize).response;
      }
      assert.deepEqual(response, { status, body: { ok: false, error: { message, code } } });
    }
  });

  it('resolves ok as soon as the manifest is parsed, while the file is still arriving', async () => {
    const req = new Readable({ read() {} });
    req.push(
      encode(
        [
          manifest({ f: S('f', { name: 'n' }) }),
          { raw: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file:f"; filename="p"\r\n\r\nfirst ` },
        ],
        { close: false },
      ),
    );
    const r = await parseMultipart(req, { 'content-type': CT }, opts);
    assert.equal(r.ok, true);
    let finalized = false;
    r.finalize.then(() => (finalized = true));
    const stream = r.value.f.stream();
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(finalized, false);
    req.push(`second\r\n--${BOUNDARY}--\r\n`);
    req.push(null);
    await new Promise((resolve) => stream.on('end', resolve));
    assert.equal(Buffer.concat(chunks).toString(), 'first second');
    assert.deepEqual(await r.finalize, { ok: true });
    assert.equal(r.value.f.name, 'n');
  });

  it('abort via signal mid-file: finalize fails with 499, the file stream errors, the body is drained', async () => {
    const req = new Readable({ read() {} });
    req.push(
      encode(
        [
          manifest({ f: S('f') }),
          { raw: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file:f"; filename="p"\r\n\r\npartial` },
        ],
        { close: false },
      ),
    );
    const ac = new AbortController();
    const r = await parseMultipart(req, { 'content-type': CT }, { ...opts, signal: ac.signal });
    assert.equal(r.ok, true);
    const reading = readInputFileToBuffer(r.value.f);
    await new Promise((resolve) => setImmediate(resolve));
    ac.abort();
    assert.deepEqual(await r.finalize, {
      ok: false,
      response: {
        status: 499,
        body: { ok: false, error: { message: 'Client Closed Request', code: 'REQUEST_ABORTED' } },
      },
    });
    await assert.rejects(reading);
    assert.equal(req.readableFlowing, true); // resumed: the rest of the body is drained
  });

  it('abort before the manifest, an already-aborted signal, and a request error give 499', async () => {
    const aborted = {
      ok: false,
      response: {
        status: 499,
        body: { ok: false, error: { message: 'Client Closed Request', code: 'REQUEST_ABORTED' } },
      },
    };
    {
      const req = new Readable({ read() {} });
      req.push(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="__manifest"\r\n\r\n{"inp`);
      const ac = new AbortController();
      const p = parseMultipart(req, { 'content-type': CT }, { ...opts, signal: ac.signal });
      setImmediate(() => ac.abort());
      assert.deepEqual(await p, aborted);
    }
    {
      const ac = new AbortController();
      ac.abort();
      assert.deepEqual(
        await parseMultipart(
          feed(encode([manifest({ a: 1 })])),
          { 'content-type': CT },
          { ...opts, signal: ac.signal },
        ),
        aborted,
      );
    }
    {
      const req = new Readable({ read() {} });
      const p = parseMultipart(req, { 'content-type': CT }, opts);
      setImmediate(() => req.destroy(new Error('socket hang up')));
      assert.deepEqual(await p, aborted);
    }
  });

  it('stream() is single use; a file without a stream is unavailable', async () => {
    const r = await parseMultipart(
      feed(encode([manifest({ f: S('f') }), file('f', 'abc')])),
      { 'content-type': CT },
      opts,
    );
    const { stream } = await r.value.f.resolve();
    assert.throws(
      () => r.value.f.stream(),
      (err) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /^InputFile stream already consumed/);
        assert.ok(Errors.nodeInputFileConsumedError.is(err));
        return true;
      },
    );
    await assert.rejects(r.value.f.resolve(), /already consumed/);
    assert.equal((await readInputFileToBuffer({ resolve: async () => ({ stream }) })).toString(), 'abc');
    assert.deepEqual(await r.finalize, { ok: true });

    const bare = new InputFile({ name: 'x' });
    assert.throws(
      () => bare.stream(),
      (err) => Errors.nodeInputFileUnavailableError.is(err) && /not available/.test(err.message),
    );
    assert.deepEqual(Object.keys(bare), ['_consumed', 'name', 'type', 'size', 'lastModified', 'extra', '_stream']);
  });

  it('toTempFile writes the file (creating the directory) and reports the bytes', async () => {
    const data = crypto.randomBytes(200_000);
    const body = encode([manifest({ f: S('f', { name: 'we ird/näme?.bin' }) }), file('f', data)]);
    const r = await parseMultipart(feed(body, 'chunks64k'), { 'content-type': CT }, opts);
    const dir = path.join(os.tmpdir(), `runner-native-mp-${process.pid}-${Date.now()}`, 'nested');
    try {
      const out = await r.value.f.toTempFile(dir);
      assert.equal(path.dirname(out.path), dir);
      assert.match(path.basename(out.path), /^we_ird_n_me_\.bin\.\d+\.[a-z0-9]+$/);
      assert.equal(out.bytesWritten, data.length);
      assert.ok(fs.readFileSync(out.path).equals(data));
      assert.deepEqual(await r.finalize, { ok: true });
      assert.throws(() => r.value.f.stream(), /already consumed/);
    } finally {
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it('a 50 MB file streams through with backpressure, never buffered whole', { timeout: 120_000 }, async (t) => {
    const SIZE = 50 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    const head = encode(
      [
        manifest({ f: S('big', { name: 'big.bin' }) }),
        { raw: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file:big"; filename="big.bin"\r\n\r\n` },
      ],
      { close: false },
    );
    const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
    const pattern = (i) => Buffer.alloc(CHUNK, i % 251);
    let pulled = 0; // file bytes the parser has taken from the source (generated on demand)
    const expectedHash = crypto.createHash('sha256');
    function* source() {
      yield head;
      for (let i = 0; pulled < SIZE; i++) {
        const c = pattern(i);
        expectedHash.update(c);
        pulled += c.length;
        yield c;
      }
      yield tail;
    }
    const req = Readable.from(source(), { objectMode: false, highWaterMark: CHUNK });
    const r = await parseMultipart(req, { 'content-type': CT }, { ...opts, limits: { fileSize: 64 * 1024 * 1024 } });
    assert.equal(r.ok, true);

    // Nobody reads the file yet: the source must stop being read.
    for (let k = 0; k < 50; k++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(pulled < 2 * 1024 * 1024, `pulled ${pulled} bytes while the file was not read`);

    // Collect garbage as we go, so that RSS reflects what is alive (consumed chunks are garbage).
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    gc();
    const rss0 = process.memoryUsage().rss;
    let maxRss = rss0;
    let maxAhead = 0;
    let consumed = 0;
    const hash = crypto.createHash('sha256');
    const stream = r.value.f.stream();
    for await (const c of stream) {
      consumed += c.length;
      hash.update(c);
      maxAhead = Math.max(maxAhead, pulled - consumed);
      if ((consumed / CHUNK) % 16 === 0) {
        gc();
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
        await new Promise((resolve) => setTimeout(resolve, 1)); // a slow consumer
      }
    }
    t.diagnostic(`RSS growth ${maxRss - rss0} bytes; parser at most ${maxAhead} bytes ahead of the consumer`);
    assert.equal(consumed, SIZE);
    assert.equal(hash.digest('hex'), expectedHash.digest('hex'));
    assert.deepEqual(await r.finalize, { ok: true });
    assert.ok(maxAhead < 4 * 1024 * 1024, `the parser ran ${maxAhead} bytes ahead of the consumer`);
    assert.ok(maxRss - rss0 < SIZE / 2, `RSS grew by ${maxRss - rss0} bytes`);
  });
});
