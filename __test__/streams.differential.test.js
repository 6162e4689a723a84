'use strict';
// The same Runner app (helpers/streams-app.js) exposed by Runner's nodeExposure (the
// reference) and by nativeExposure: multipart uploads (success and every error), raw
// application/octet-stream bodies read through useExposureContext().req, streamed answers, and
// answers written through useExposureContext().res. The same raw HTTP request goes to both;
// status, body bytes and the protocol headers must match (helpers/compare.js).
// Then the standalone TunnelServer against the reference for the multipart errors (startPair).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { Serializer } = require('@bluelibs/runner');
const { startBoth } = require('./helpers/runner-app');
const { startStreamsApp, probes } = require('./helpers/streams-app');
const { rawRequest, buildRequest, startPair, sameAnswer } = require('./helpers');
const S = require('./helpers/streams');

const { TOKEN, MB } = S;
const BASE = '/__runner';
const serializer = new Serializer();

const auth = ['x-runner-token', TOKEN];
const rawSpec = (id, body, { contentType = 'application/octet-stream', extra = [], ...rest } = {}) => ({
  method: 'POST',
  path: `${BASE}/task/${id}`,
  headers: [auth, ['Content-Type', contentType], ...extra],
  body,
  ...rest,
});
const jsonSpec = (id, input) => rawSpec(id, serializer.stringify({ input }), { contentType: 'application/json' });
const mpSpec = (id, parts, opts = {}) =>
  rawSpec(id, S.multipartBuffer(parts, opts), { contentType: opts.contentType ?? S.MULTIPART_CT });
const manifest = (input) => S.manifestPart(input, (v) => serializer.stringify(v));
const F = S.fileSentinel;
const file = S.filePart;

function startRunnerPair(http) {
  return startBoth((exposure) => startStreamsApp(exposure, http));
}

/** sameAnswer with a longer timeout: the same request to both, compared, `expected` on both. */
function both(pair, spec, expected, label) {
  return sameAnswer(pair, { timeoutMs: 20000, ...spec }, expected, { label });
}

// -------------------------------------------------------------------------------------------
// multipart bodies

const SUCCESS_CASES = [
  [
    'two files, metadata from the manifest and from the parts',
    'st.files',
    [
      manifest({
        title: 'two',
        a: F('A', { name: 'manifest-a.txt', type: 'text/plain', size: 5, extra: { tag: 1 } }),
        list: [F('B')],
      }),
      file('A', 'hello', 'part-a.bin', 'application/x-a'),
      file('B', 'second file', 'part-b.txt', 'text/markdown'),
    ],
    '200',
  ],
  [
    'file read through stream()',
    'st.filesViaStream',
    [manifest({ f: F('F', { name: 'f.txt' }) }), file('F', 'via stream()')],
    '200',
  ],
  [
    'binary file of 300 KB',
    'st.files',
    [manifest({ f: F('F') }), file('F', S.patternBytes(300 * 1024), 'bin.dat', 'application/octet-stream')],
    '200',
  ],
  ['no files at all', 'st.files', [manifest({ plain: true, n: 3, when: new Date(0) })], '200'],
  [
    'a file part before the manifest',
    'st.files',
    [file('F', 'early bytes', 'early.txt', 'text/plain'), manifest({ f: F('F') })],
    '200',
  ],
  [
    'an undeclared file part and a non-file: part are ignored',
    'st.files',
    [
      manifest({ f: F('F') }),
      file('F', 'declared'),
      file('X', 'undeclared'),
      { name: 'other', filename: 'o.txt', type: 'text/plain', data: 'not a file: part' },
      { name: 'field', value: 'plain field' },
    ],
    '200',
  ],
  [
    'the same file twice in the input',
    'st.files',
    [manifest({ a: F('F'), b: F('F', { name: 'again.txt' }) }), file('F', 'shared')],
    '200',
  ],
  [
    'toTempFile()',
    'st.fileTemp',
    [manifest({ file: F('T', { name: 'temp.bin' }) }), file('T', S.patternBytes(100 * 1024))],
    '200',
  ],
  [
    'a multipart task answering with a stream',
    'st.filesThenStream',
    [manifest({ f: F('F') }), file('F', 'streamed back')],
    '200',
  ],
  [
    'a multipart task throwing a typed error',
    'st.filesThenReject',
    [manifest({ f: F('F') }), file('F', 'then rejected')],
    '422 INTERNAL_ERROR',
  ],
];

// With small limits: { fileSize: 1024, files: 2, fields: 3, fieldSize: 512, fieldNameSize: 40, parts: 6, headerPairs: 3 }
const SMALL_LIMITS = {
  fileSize: 1024,
  files: 2,
  fields: 3,
  fieldSize: 512,
  fieldNameSize: 40,
  parts: 6,
  headerPairs: 3,
};
const ERROR_CASES = [
  // INVALID_MULTIPART
  [
    'INVALID_MULTIPART: no boundary in the content-type',
    '400 INVALID_MULTIPART',
    [manifest({ a: 1 })],
    { contentType: 'multipart/form-data' },
  ],
  [
    'INVALID_MULTIPART: boundary in the header differs from the body',
    '400 INVALID_MULTIPART',
    [manifest({ a: 1 })],
    { contentType: 'multipart/form-data; boundary=not-the-one' },
  ],
  [
    'INVALID_MULTIPART: body ends inside the manifest',
    '400 INVALID_MULTIPART',
    [{ raw: `--${S.BOUNDARY}\r\nContent-Disposition: form-data; name="__manifest"\r\n\r\n{"input":` }],
    { close: false },
  ],
  [
    'INVALID_MULTIPART: manifest is not JSON',
    '400 INVALID_MULTIPART',
    [{ name: '__manifest', value: '{"input": nope' }],
  ],
  [
    'INVALID_MULTIPART: garbage instead of parts',
    '400 INVALID_MULTIPART',
    [{ raw: 'this is not multipart at all' }],
    { close: false },
  ],
  // MISSING_MANIFEST
  ['MISSING_MANIFEST: only a file part', '400 MISSING_MANIFEST', [file('F', 'x')]],
  ['MISSING_MANIFEST: manifest is null', '400 MISSING_MANIFEST', [{ name: '__manifest', value: 'null' }]],
  ['MISSING_MANIFEST: manifest is empty', '400 MISSING_MANIFEST', [{ name: '__manifest', value: '' }]],
  ['MISSING_MANIFEST: empty form', '400 MISSING_MANIFEST', []],
  // MISSING_FILE_PART
  [
    'MISSING_FILE_PART: a declared file never sent',
    '500 MISSING_FILE_PART',
    [manifest({ a: F('A'), b: F('B') }), file('A', 'only A')],
  ],
  [
    'MISSING_FILE_PART: the only file never sent',
    '500 MISSING_FILE_PART',
    [manifest({ f: F('F', { name: 'ghost.txt' }) })],
  ],
  // PAYLOAD_TOO_LARGE, one per limit
  ['PAYLOAD_TOO_LARGE fileSize', '413 PAYLOAD_TOO_LARGE', [manifest({ f: F('F') }), file('F', S.patternBytes(4000))]],
  [
    'PAYLOAD_TOO_LARGE files (file parts)',
    '413 PAYLOAD_TOO_LARGE',
    [manifest({ a: F('A') }), file('A', 'a'), file('B', 'b'), file('C', 'c')],
  ],
  [
    'PAYLOAD_TOO_LARGE files (manifest sentinels)',
    '413 PAYLOAD_TOO_LARGE',
    [manifest({ a: F('A'), b: F('B'), c: F('C') }), file('A', 'a'), file('B', 'b'), file('C', 'c')],
  ],
  [
    'PAYLOAD_TOO_LARGE fields',
    '413 PAYLOAD_TOO_LARGE',
    [
      manifest({ a: 1 }),
      { name: 'x1', value: '1' },
      { name: 'x2', value: '2' },
      { name: 'x3', value: '3' },
      { name: 'x4', value: '4' },
    ],
  ],
  ['PAYLOAD_TOO_LARGE fieldSize (the manifest)', '413 PAYLOAD_TOO_LARGE', [manifest({ big: 'y'.repeat(700) })]],
  [
    'PAYLOAD_TOO_LARGE fieldSize (another field)',
    '413 PAYLOAD_TOO_LARGE',
    [manifest({ a: 1 }), { name: 'note', value: 'z'.repeat(700) }],
  ],
  [
    'fieldNameSize (busboy applies it to urlencoded forms only)',
    '200',
    [manifest({ a: 1 }), { name: 'n'.repeat(80), value: 'v' }],
  ],
  [
    'PAYLOAD_TOO_LARGE parts',
    '413 PAYLOAD_TOO_LARGE',
    [manifest({ a: 1 }), ...Array.from({ length: 8 }, (_, i) => file(`P${i}`, 'p'))],
  ],
  [
    'headerPairs: a part with more header lines than allowed',
    '200',
    [
      {
        ...manifest({ a: 1 }),
        headersFirst: [
          ['X-A', '1'],
          ['X-B', '2'],
          ['X-C', '3'],
          ['X-D', '4'],
        ],
      },
    ],
  ],
  [
    'headerPairs: a file part with more header lines than allowed',
    '200',
    [
      manifest({ f: F('F') }),
      {
        ...file('F', 'data'),
        headers: [
          ['X-A', '1'],
          ['X-B', '2'],
          ['X-C', '3'],
        ],
      },
    ],
  ],
];

describe('streams: nativeExposure vs nodeExposure', () => {
  let pair;
  before(async () => {
    pair = await startRunnerPair({});
  });
  after(async () => pair && pair.close());

  describe('multipart uploads', () => {
    for (const [label, id, parts, expected] of SUCCESS_CASES) {
      it(label, async () => {
        const { ref } = await both(pair, mpSpec(id, parts), expected, label);
        // the reference itself must have succeeded (or failed as the case says), so the
        // comparison is about something
        if (id === 'st.filesThenReject') assert.equal(ref.status, 422, ref.text);
        else assert.equal(ref.status, 200, ref.text);
      });
    }

    it('a 5 MB file streamed in small writes', async () => {
      const body = S.multipartBuffer([manifest({ f: F('F', { name: 'big.bin' }) }), file('F', S.patternBytes(5 * MB))]);
      const parts = [];
      for (let off = 0; off < body.length; off += 256 * 1024) parts.push(body.subarray(off, off + 256 * 1024));
      const spec = { ...rawSpec('st.files', undefined, { contentType: S.MULTIPART_CT }), body: undefined, parts };
      const { ref } = await both(pair, spec, '200', '5 MB in 256 KiB writes');
      assert.equal(ref.status, 200, ref.text);
      assert.equal(ref.json().result.files[0].sha256, S.expectedDigest(5 * MB).sha256);
    });
  });

  describe('application/octet-stream read through useExposureContext().req', () => {
    it('1 MB body', async () => {
      const { ref } = await both(pair, rawSpec('st.rawDigest', S.patternBytes(MB)), '200', '1 MB');
      assert.deepEqual(ref.json().result, {
        inputType: 'undefined',
        contentType: 'application/octet-stream',
        ...S.expectedDigest(MB),
      });
    });
    it('chunked body, slow', async () => {
      const chunks = Array.from({ length: 10 }, (_, i) => S.patternBytes(10000, i * 10000));
      await both(
        pair,
        rawSpec('st.rawDigest', undefined, { chunked: true, chunks, chunkDelayMs: 10 }),
        '200',
        'chunked',
      );
    });
    it('empty body', async () => {
      await both(pair, rawSpec('st.rawDigest', Buffer.alloc(0)), '200', 'empty');
    });
    it('content-type with parameters', async () => {
      await both(
        pair,
        rawSpec('st.rawText', 'text in a raw body', { contentType: 'application/octet-stream; charset=binary' }),
        '200',
        'params',
      );
    });
    it('a task that ignores the raw body answers JSON', async () => {
      // its input is undefined, so destructuring { a, b } throws: a JSON 500
      await both(pair, rawSpec('st.add', Buffer.from('ignored bytes')), '500 INTERNAL_ERROR', 'ignored body');
    });
  });

  describe('streamed answers', () => {
    it('a returned Readable', async () => {
      const { ref } = await both(
        pair,
        jsonSpec('st.readable', { parts: ['one ', 'two ', 'three'] }),
        '200',
        'readable',
      );
      assert.equal(ref.text, 'one two three');
    });
    it('{ stream } alone', async () => {
      await both(pair, jsonSpec('st.streamObj', { parts: ['x', 'y'] }), '200', 'stream only');
    });
    it('{ stream, status, contentType, headers } with blocked headers', async () => {
      const input = {
        parts: ['a', 'b'],
        status: 203,
        contentType: 'text/plain; charset=utf-8',
        headers: {
          'x-custom': 'kept',
          'Set-Cookie': 'id=1',
          'Access-Control-Allow-Origin': 'https://evil.example',
          'Access-Control-Allow-Credentials': 'true',
          'X-Content-Type-Options': 'nope',
          'X-Frame-Options': 'ALLOWALL',
        },
      };
      const { ref, nat } = await both(pair, jsonSpec('st.streamObj', input), '203', 'blocked headers');
      assert.equal(ref.headers['x-custom'], 'kept');
      assert.equal(nat.headers['x-custom'], 'kept');
      assert.equal(nat.headers['set-cookie'], ref.headers['set-cookie']);
      assert.equal(nat.headers['set-cookie'], undefined);
    });
    it('1 MB pattern download', async () => {
      const { nat } = await both(pair, jsonSpec('st.download', { size: MB }), '200', 'download');
      assert.deepEqual(S.digestOf(nat.body), S.expectedDigest(MB));
    });
    it('duplex: upper-casing echo', async () => {
      const { ref } = await both(pair, rawSpec('st.upper', 'hello duplex world'), '200', 'upper');
      assert.equal(ref.text, 'HELLO DUPLEX WORLD');
    });
  });

  describe('useExposureContext().res', () => {
    it('writeHead + write + end (return value ignored)', async () => {
      const input = {
        status: 202,
        headers: { 'content-type': 'text/plain', 'x-by': 'res' },
        parts: ['a', 'b'],
        last: 'c',
      };
      const { ref, nat } = await both(pair, jsonSpec('st.resWrite', input), '202', 'writeHead');
      assert.equal(ref.text, 'abc');
      assert.equal(nat.headers['x-by'], 'res');
    });
    it('statusCode + setHeader + write + end', async () => {
      const { nat } = await both(pair, jsonSpec('st.resSetHeader', {}), '201', 'setHeader');
      assert.equal(nat.headers['x-written-by'], 'task');
    });
    // Not compared: the reference never ends this answer (its error handler throws
    // ERR_HTTP_HEADERS_SENT as an unhandled rejection and the client waits forever).
    it('a task that throws after writing: nativeExposure ends the chunked answer cleanly', async () => {
      const nat = await rawRequest(pair.nat, { ...jsonSpec('st.throwMidStream', {}), timeoutMs: 10000 });
      assert.equal(nat.status, 200);
      assert.equal(nat.text, 'partial ');
      assert.match(nat.headers['transfer-encoding'] ?? '', /chunked/);
    });
  });
});

/** Sends head + body bytes, waits until the task's probe record satisfies `ready`, drops the
 * connection, then gives the server `settleMs` and returns a copy of the record. */
async function disconnectWhen(target, spec, task, ready, settleMs = 1500) {
  let rec;
  const seen = new Promise((resolve) => {
    const on = (r) => {
      if (r.task !== task) return;
      rec = r;
      if (ready(r)) {
        probes.removeListener('record', on);
        resolve();
      }
    };
    probes.on('record', on);
  });
  const socket = net.connect({ host: '127.0.0.1', port: target.port });
  socket.on('error', () => {});
  socket.on('data', () => {});
  socket.on('connect', () => socket.write(buildRequest(spec)));
  await S.within(seen, 10000, `${task} probe`);
  socket.destroy();
  await S.sleep(settleMs);
  const { source, ...copy } = rec;
  return copy;
}

describe('streams: a client going away, nativeExposure vs nodeExposure', () => {
  let pair;
  before(async () => {
    pair = await startRunnerPair({});
  });
  after(async () => pair && pair.close());

  it('mid-upload: useExposureContext().signal aborts and the body read fails, as in the reference', async () => {
    const spec = {
      ...rawSpec('st.hold', S.patternBytes(64 * 1024)),
      headers: [auth, ['Content-Type', 'application/octet-stream'], ['Content-Length', String(100 * MB)]],
    };
    const ref = await disconnectWhen(pair.ref, spec, 'st.hold', (r) => r.received >= 64 * 1024);
    const nat = await disconnectWhen(pair.nat, spec, 'st.hold', (r) => r.received >= 64 * 1024);
    assert.deepEqual(
      ref,
      { task: 'st.hold', signalAborted: true, reqClosed: true, outcome: 'error', received: 64 * 1024 },
      'reference (harness assumption)',
    );
    assert.deepEqual(nat, ref);
  });

  it('mid-download: useExposureContext().signal aborts as in the reference, and the source is destroyed', async () => {
    const spec = jsonSpec('st.infinite', {});
    const ref = await disconnectWhen(pair.ref, spec, 'st.infinite', () => true);
    const nat = await disconnectWhen(pair.nat, spec, 'st.infinite', () => true);
    assert.equal(ref.signalAborted, true, 'reference (harness assumption)');
    assert.equal(nat.signalAborted, true, 'nativeExposure: signal not aborted after the client left mid-download');
    // the reference only unpipes its source; the native server destroys it
    assert.equal(nat.sourceDestroyed, true, 'nativeExposure: the answer source was not destroyed');
  });
});

describe('streams: multipart errors, nativeExposure vs nodeExposure (small limits)', () => {
  let pair;
  before(async () => {
    pair = await startRunnerPair({ limits: { multipart: SMALL_LIMITS } });
  });
  after(async () => pair && pair.close());

  for (const [label, expected, parts, opts] of ERROR_CASES) {
    it(label, async () => {
      const { ref } = await both(pair, mpSpec('st.files', parts, opts), expected, label);
      const code = label.split(':')[0].split(' ')[0];
      if (/^[A-Z_]+$/.test(code))
        assert.equal(ref.json().error.code, code, `the reference answered ${ref.status} ${ref.text}`);
    });
  }
});

describe('streams: multipart errors, standalone TunnelServer vs the reference (small limits)', () => {
  let pair;
  before(async () => {
    pair = await startPair(
      { tasks: { 'st.files': async (input) => S.describeFiles(input) } },
      { auth: { token: TOKEN }, limits: { multipart: SMALL_LIMITS } },
    );
  });
  after(async () => pair && pair.close());

  for (const [label, expected, parts, opts] of [
    ...ERROR_CASES,
    ['success', '200', [manifest({ f: F('F', { name: 'ok.txt' }) }), file('F', 'fine')]],
  ]) {
    it(label, async () => {
      const spec = mpSpec('st.files', parts, opts);
      const { ref } = await sameAnswer(pair, { ...spec, timeoutMs: 20000 }, expected, { label });
      const code = label.split(':')[0].split(' ')[0];
      if (/^[A-Z_]+$/.test(code))
        assert.equal(ref.json().error.code, code, `the reference answered ${ref.status} ${ref.text}`);
    });
  }
});
