'use strict';
// Body rules (readJsonBody + the `input` unwrapping in createTaskHandler, `payload` /
// `returnPayload` in createEventHandler), compared with Runner's nodeExposure.
// Run once with plain JSON on both sides and once with Runner's `new Serializer()` on both sides.
const { describe, it, before, after } = require('node:test');
const { startPair, sameAnswer, allHandlers, taskReq, eventReq, authHeader, TOKEN } = require('./helpers');

const AUTH = { token: TOKEN };
const bin = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))));

const nestedArrays = (n) => `{"input":${'['.repeat(n)}${']'.repeat(n)}}`;
const nestedObjects = (n) => `{"input":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;

const taskBodyCases = [
  ['empty body -> input undefined', 'app.describe', ''],
  ['object with own "input"', 'app.describe', '{"input":{"a":1,"b":[true,null]}}'],
  ['object with "input": null', 'app.describe', '{"input":null}'],
  ['object with "input" and other keys uses only input', 'app.describe', '{"input":{"x":1},"other":2}'],
  ['object without "input" is itself the input', 'app.describe', '{"x":1,"y":"z"}'],
  ['empty object is itself the input', 'app.describe', '{}'],
  ['array is itself the input', 'app.describe', '[1,2,3]'],
  ['array holding an object with input is not unwrapped', 'app.describe', '[{"input":1}]'],
  ['number body', 'app.describe', '42'],
  ['negative zero body', 'app.describe', '-0'],
  ['exponent number body', 'app.describe', '1.5e3'],
  ['string body', 'app.describe', '"just a string"'],
  ['null body', 'app.describe', 'null'],
  ['true body', 'app.describe', 'true'],
  ['false body', 'app.describe', 'false'],
  ['zero body', 'app.describe', '0'],
  ['empty string body', 'app.describe', '""'],
  ['surrounding whitespace is allowed', 'app.describe', ' \r\n\t{"input":1} \n'],
  ['invalid JSON: unterminated object -> 400', 'app.describe', '{'],
  ['invalid JSON: missing value -> 400', 'app.describe', '{"input":}'],
  ['invalid JSON: bare word -> 400', 'app.describe', 'undefined'],
  ['invalid JSON: single quotes -> 400', 'app.describe', "{'input':1}"],
  ['invalid JSON: NaN -> 400', 'app.describe', 'NaN'],
  ['invalid JSON: trailing comma -> 400', 'app.describe', '{"input":1,}'],
  ['invalid JSON: whitespace only -> 400', 'app.describe', '   '],
  ['invalid JSON: trailing garbage -> 400', 'app.describe', '{"input":1}x'],
  ['invalid JSON: two documents -> 400', 'app.describe', '{} {}'],
  ['invalid JSON: leading BOM -> 400', 'app.describe', bin(Buffer.from([0xef, 0xbb, 0xbf]), '{"input":1}')],
  ['invalid JSON: raw control character in string -> 400', 'app.describe', '{"input":"a\u0001b"}'],
  ['invalid UTF-8 byte in a string is decoded lossily', 'app.length', bin('{"input":"a', Buffer.from([0xff]), 'b"}')],
  [
    'UTF-8 encoded surrogate (ED A0 80) is decoded lossily',
    'app.length',
    bin('{"input":"', Buffer.from([0xed, 0xa0, 0x80]), '"}'),
  ],
  ['truncated UTF-8 sequence is decoded lossily', 'app.length', bin('{"input":"x', Buffer.from([0xe2, 0x82]), '"}')],
  ['overlong UTF-8 sequence is decoded lossily', 'app.length', bin('{"input":"', Buffer.from([0xc0, 0xaf]), '"}')],
  ['valid multi-byte UTF-8 (emoji, CJK) round-trips', 'app.length', '{"input":"😀 漢字 é"}'],
  ['escaped lone surrogate \\ud800', 'app.length', '{"input":"\\ud800"}'],
  ['escaped surrogate pair', 'app.length', '{"input":"\\ud83d\\ude00"}'],
  ['escaped NUL and control characters', 'app.length', '{"input":"\\u0000\\b\\f\\n\\r\\t\\/"}'],
  ['big integer beyond 2^64', 'app.echo', '{"input":123456789012345678901234567890}'],
  ['big integer beyond 2^53 within u64', 'app.echo', '{"input":12345678901234567890}'],
  ['2^53 + 1 rounds like a double', 'app.echo', '{"input":9007199254740993}'],
  ['negative big integer', 'app.echo', '{"input":-98765432109876543210}'],
  ['number overflowing a double (1e400)', 'app.echo', '{"input":1e400}'],
  ['negative number overflowing a double (-1e400)', 'app.echo', '{"input":-1e400}'],
  ['number underflowing a double (1e-400)', 'app.echo', '{"input":1e-400}'],
  ['smallest subnormal double', 'app.echo', '{"input":5e-324}'],
  [
    'decimal fractions keep shortest round-trip form',
    'app.echo',
    '{"input":[0.1,0.30000000000000004,1E2,1e+21,123.456e-7]}',
  ],
  ['duplicate "input" keys: last wins', 'app.describe', '{"input":1,"input":2}'],
  ['duplicate keys inside the input: last wins', 'app.echo', '{"input":{"a":1,"b":2,"a":3}}'],
  ['duplicate non-input keys around input', 'app.describe', '{"a":1,"input":"i","a":2}'],
  [
    '"__proto__" key inside the input does not change the prototype',
    'app.protoInspect',
    '{"input":{"__proto__":{"polluted":true},"k":1}}',
  ],
  ['top-level "__proto__" holding an input is not unwrapped', 'app.describe', '{"__proto__":{"input":"sneaky"}}'],
  [
    '"constructor"/"prototype" keys',
    'app.protoInspect',
    '{"input":{"constructor":{"prototype":{"polluted":true}},"k":2}}',
  ],
  ['5000 nested arrays', 'app.depth', nestedArrays(5000)],
  ['100 nested arrays', 'app.depth', nestedArrays(100)],
  ['5000 nested objects', 'app.depth', nestedObjects(5000)],
  ['long string (100 KB)', 'app.length', `{"input":"${'x'.repeat(100 * 1024)}"}`],
  [
    'many keys',
    'app.echo',
    JSON.stringify({ input: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])) }),
  ],
  [
    'key order is preserved (numeric-like keys follow JS rules)',
    'app.echo',
    '{"input":{"b":1,"a":2,"10":3,"2":4,"-1":5}}',
  ],
  [
    'Runner type tags in the body (plain objects with JSON, typed values with the Serializer)',
    'app.describe',
    '{"input":{"when":{"__type":"Date","value":"2020-01-01T00:00:00.000Z"},"u":{"__type":"Undefined","value":null}}}',
  ],
];

const eventBodyCases = [
  ['payload without returnPayload -> {"ok":true}', 'app.ev.wrap', '{"payload":1}'],
  ['payload with returnPayload true -> result', 'app.ev.wrap', '{"payload":{"a":[1]},"returnPayload":true}'],
  ['returnPayload truthy number', 'app.ev.wrap', '{"payload":1,"returnPayload":1}'],
  ['returnPayload truthy string "false"', 'app.ev.wrap', '{"payload":1,"returnPayload":"false"}'],
  ['returnPayload 0 is false', 'app.ev.wrap', '{"payload":1,"returnPayload":0}'],
  ['returnPayload null is false', 'app.ev.wrap', '{"payload":1,"returnPayload":null}'],
  ['returnPayload without payload -> payload undefined', 'app.ev.wrap', '{"returnPayload":true}'],
  ['"input" is not used as event payload', 'app.ev.wrap', '{"input":1,"returnPayload":true}'],
  ['empty body -> {"ok":true}', 'app.ev.wrap', ''],
  ['array body', 'app.ev.wrap', '[1,2]'],
  ['number body', 'app.ev.wrap', '5'],
  ['null body', 'app.ev.wrap', 'null'],
  ['string body', 'app.ev.wrap', '"s"'],
  ['hook that returns nothing keeps the payload', 'app.ev.noop', '{"payload":{"keep":"me"},"returnPayload":true}'],
  ['null payload returned', 'app.ev.noop', '{"payload":null,"returnPayload":true}'],
  ['hook returning null replaces the payload', 'app.ev.toNull', '{"payload":{"a":1},"returnPayload":true}'],
  ['hook returning 0 replaces the payload', 'app.ev.toZero', '{"payload":{"a":1},"returnPayload":true}'],
  ['hook returning false replaces the payload', 'app.ev.toFalse', '{"payload":{"a":1},"returnPayload":true}'],
  [
    'hook returning an empty string replaces the payload',
    'app.ev.toEmptyString',
    '{"payload":{"a":1},"returnPayload":true}',
  ],
  ['invalid JSON -> 400', 'app.ev.wrap', '{"payload":'],
  [
    'duplicate returnPayload keys: last wins',
    'app.ev.wrap',
    '{"payload":1,"returnPayload":true,"returnPayload":false}',
  ],
  ['big integer payload', 'app.ev.noop', '{"payload":123456789012345678901234567890,"returnPayload":true}'],
];

for (const serializer of ['json', 'runner']) {
  describe(`body rules with ${serializer === 'json' ? 'plain JSON' : "Runner's Serializer"} on both sides (taken from the reference readJsonBody)`, () => {
    let pair;
    before(async () => {
      pair = await startPair(allHandlers(), { auth: AUTH, serializer });
    });
    after(async () => pair && pair.close());

    for (const [label, id, body] of taskBodyCases) {
      it(`task: ${label} (same answer as the reference)`, async () => {
        await sameAnswer(pair, taskReq(id, body), { label });
      });
    }
    for (const [label, id, body] of eventBodyCases) {
      it(`event: ${label} (same answer as the reference)`, async () => {
        await sameAnswer(pair, eventReq(id, body), { label });
      });
    }

    it('missing content-type: body is still parsed as JSON (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        method: 'POST',
        path: '/__runner/task/app.describe',
        headers: [authHeader()],
        body: '{"input":"no content type"}',
      });
    });
    it('no body and no content-length (same answer as the reference)', async () => {
      await sameAnswer(pair, { method: 'POST', path: '/__runner/task/app.describe', headers: [authHeader()] });
    });
    it('text/plain content-type: body is still parsed as JSON (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        method: 'POST',
        path: '/__runner/task/app.describe',
        headers: [authHeader(), ['Content-Type', 'text/plain']],
        body: '{"input":[1]}',
      });
    });
    it('content-type with charset parameter (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        method: 'POST',
        path: '/__runner/task/app.describe',
        headers: [authHeader(), ['Content-Type', 'application/json; charset=utf-8']],
        body: '{"input":"cs"}',
      });
    });
    it('repeated content-type headers (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        method: 'POST',
        path: '/__runner/task/app.describe',
        headers: [authHeader(), ['Content-Type', 'application/json'], ['Content-Type', 'application/json']],
        body: '{"input":"twice"}',
      });
    });
    it('chunked request body (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        ...taskReq('app.describe', undefined),
        chunked: true,
        chunks: ['{"inp', 'ut":{"a', '":1}}'],
      });
    });
    it('chunked request body with a UTF-8 character split across chunks (same answer as the reference)', async () => {
      const bytes = Buffer.from('{"input":"é😀"}', 'utf8');
      await sameAnswer(pair, {
        ...taskReq('app.length', undefined),
        chunked: true,
        chunks: [bytes.subarray(0, 11), bytes.subarray(11, 14), bytes.subarray(14)],
      });
    });
    it('body sent slowly in several writes (same answer as the reference)', async () => {
      await sameAnswer(pair, {
        ...taskReq('app.describe', undefined),
        parts: ['{"input"', ':', '"slow"', '}'],
        chunkDelayMs: 20,
      });
    });
  });
}

describe("Runner-typed values with Runner's Serializer on both sides (taken from the reference)", () => {
  const typedHandlers = () => {
    const h = allHandlers();
    h.tasks['typed.roundtrip'] = async (input) => ({
      isDate: input.when instanceof Date,
      when: input.when,
      later: new Date(input.when.getTime() + 1000),
      bigType: typeof input.n,
      doubled: input.n * 2n,
      set: input.s,
      hasSetOne: input.s instanceof Set && input.s.has(1),
      map: new Map([['k', input.when]]),
      undef: undefined,
      nan: NaN,
      inf: -Infinity,
      re: /ab+c/gi,
    });
    h.tasks['typed.bigint'] = async () => 2n ** 70n;
    h.tasks['typed.shared'] = async (input) => ({ same: input.x === input.y, x: input.x });
    h.events['typed.ev'] = async (payload) => ({ at: payload, isDate: payload instanceof Date });
    return h;
  };
  let pair;
  before(async () => {
    pair = await startPair(typedHandlers(), { auth: AUTH, serializer: 'runner' });
  });
  after(async () => pair && pair.close());

  const cases = [
    [
      'Dates, BigInt, Set in; Date, BigInt, Map, undefined, NaN, RegExp out',
      taskReq(
        'typed.roundtrip',
        '{"input":{"when":{"__type":"Date","value":"2020-01-02T03:04:05.678Z"},"n":{"__type":"BigInt","value":"123456789012345678901234567890"},"s":{"__type":"Set","value":[1,2]}}}',
      ),
    ],
    ['returning a BigInt', taskReq('typed.bigint', '')],
    ['returning undefined is encoded by the serializer', taskReq('app.returnUndefined', '')],
    ['returning a Date', taskReq('app.returnDate', '')],
    [
      'graph payload with shared references',
      taskReq(
        'typed.shared',
        '{"__graph":true,"version":1,"root":{"__ref":"o1"},"nodes":{"o2":{"kind":"object","value":{"a":1}},"o1":{"kind":"object","value":{"input":{"__ref":"i1"}}},"i1":{"kind":"object","value":{"x":{"__ref":"o2"},"y":{"__ref":"o2"}}}}}',
      ),
    ],
    ['unknown __type -> 400 INVALID_JSON', taskReq('app.echo', '{"input":{"__type":"Nope","value":1}}')],
    ['invalid BigInt payload -> 400 INVALID_JSON', taskReq('app.echo', '{"input":{"__type":"BigInt","value":"12x"}}')],
    ['cyclic result cannot be serialized -> 500', taskReq('app.returnCyclic', '')],
    [
      'typed event payload with returnPayload',
      eventReq('typed.ev', '{"payload":{"__type":"Date","value":"1999-12-31T23:59:59.000Z"},"returnPayload":true}'),
    ],
    [
      'typed error with data through the serializer',
      taskReq('app.throwBadRequest', '{"input":{"__type":"Date","value":"2001-01-01T00:00:00.000Z"}}'),
    ],
  ];
  for (const [label, spec] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, { label });
    });
  }
});
