'use strict';
// Body rules (readJsonBody + the `input` unwrapping in createTaskHandler, `payload` /
// `returnPayload` in createEventHandler), compared with Runner's nodeExposure.
// Run once with plain JSON on both sides and once with Runner's `new Serializer()` on both sides.
const { describe, it, before, after } = require('node:test');
const { startPair, sameAnswer, allHandlers, taskReq, eventReq, authHeader, TOKEN } = require('./helpers');

const AUTH = { token: TOKEN };
const bin = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))));

// Runner's Serializer refuses documents nested deeper than its maxDepth (1000): 400 INVALID_JSON.
const deep = { json: '200', runner: '400 INVALID_JSON' };
const nestedArrays = (n) => `{"input":${'['.repeat(n)}${']'.repeat(n)}}`;
const nestedObjects = (n) => `{"input":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;

const taskBodyCases = [
  ['empty body -> input undefined', 'app.describe', '', '200'],
  ['object with own "input"', 'app.describe', '{"input":{"a":1,"b":[true,null]}}', '200'],
  ['object with "input": null', 'app.describe', '{"input":null}', '200'],
  ['object with "input" and other keys uses only input', 'app.describe', '{"input":{"x":1},"other":2}', '200'],
  ['object without "input" is itself the input', 'app.describe', '{"x":1,"y":"z"}', '200'],
  ['empty object is itself the input', 'app.describe', '{}', '200'],
  ['array is itself the input', 'app.describe', '[1,2,3]', '200'],
  ['array holding an object with input is not unwrapped', 'app.describe', '[{"input":1}]', '200'],
  ['number body', 'app.describe', '42', '200'],
  ['negative zero body', 'app.describe', '-0', '200'],
  ['exponent number body', 'app.describe', '1.5e3', '200'],
  ['string body', 'app.describe', '"just a string"', '200'],
  ['null body', 'app.describe', 'null', '200'],
  ['true body', 'app.describe', 'true', '200'],
  ['false body', 'app.describe', 'false', '200'],
  ['zero body', 'app.describe', '0', '200'],
  ['empty string body', 'app.describe', '""', '200'],
  ['surrounding whitespace is allowed', 'app.describe', ' \r\n\t{"input":1} \n', '200'],
  ['invalid JSON: unterminated object -> 400', 'app.describe', '{', '400 INVALID_JSON'],
  ['invalid JSON: missing value -> 400', 'app.describe', '{"input":}', '400 INVALID_JSON'],
  ['invalid JSON: bare word -> 400', 'app.describe', 'undefined', '400 INVALID_JSON'],
  ['invalid JSON: single quotes -> 400', 'app.describe', "{'input':1}", '400 INVALID_JSON'],
  ['invalid JSON: NaN -> 400', 'app.describe', 'NaN', '400 INVALID_JSON'],
  ['invalid JSON: trailing comma -> 400', 'app.describe', '{"input":1,}', '400 INVALID_JSON'],
  ['invalid JSON: whitespace only -> 400', 'app.describe', '   ', '400 INVALID_JSON'],
  ['invalid JSON: trailing garbage -> 400', 'app.describe', '{"input":1}x', '400 INVALID_JSON'],
  ['invalid JSON: two documents -> 400', 'app.describe', '{} {}', '400 INVALID_JSON'],
  [
    'invalid JSON: leading BOM -> 400',
    'app.describe',
    bin(Buffer.from([0xef, 0xbb, 0xbf]), '{"input":1}'),
    '400 INVALID_JSON',
  ],
  ['invalid JSON: raw control character in string -> 400', 'app.describe', '{"input":"a\u0001b"}', '400 INVALID_JSON'],
  [
    'invalid UTF-8 byte in a string is decoded lossily',
    'app.length',
    bin('{"input":"a', Buffer.from([0xff]), 'b"}'),
    '200',
  ],
  [
    'UTF-8 encoded surrogate (ED A0 80) is decoded lossily',
    'app.length',
    bin('{"input":"', Buffer.from([0xed, 0xa0, 0x80]), '"}'),
    '200',
  ],
  [
    'truncated UTF-8 sequence is decoded lossily',
    'app.length',
    bin('{"input":"x', Buffer.from([0xe2, 0x82]), '"}'),
    '200',
  ],
  [
    'overlong UTF-8 sequence is decoded lossily',
    'app.length',
    bin('{"input":"', Buffer.from([0xc0, 0xaf]), '"}'),
    '200',
  ],
  ['valid multi-byte UTF-8 (emoji, CJK) round-trips', 'app.length', '{"input":"😀 漢字 é"}', '200'],
  ['escaped lone surrogate \\ud800', 'app.length', '{"input":"\\ud800"}', '200'],
  ['escaped surrogate pair', 'app.length', '{"input":"\\ud83d\\ude00"}', '200'],
  ['escaped NUL and control characters', 'app.length', '{"input":"\\u0000\\b\\f\\n\\r\\t\\/"}', '200'],
  ['big integer beyond 2^64', 'app.echo', '{"input":123456789012345678901234567890}', '200'],
  ['big integer beyond 2^53 within u64', 'app.echo', '{"input":12345678901234567890}', '200'],
  ['2^53 + 1 rounds like a double', 'app.echo', '{"input":9007199254740993}', '200'],
  ['negative big integer', 'app.echo', '{"input":-98765432109876543210}', '200'],
  ['number overflowing a double (1e400)', 'app.echo', '{"input":1e400}', '200'],
  ['negative number overflowing a double (-1e400)', 'app.echo', '{"input":-1e400}', '200'],
  ['number underflowing a double (1e-400)', 'app.echo', '{"input":1e-400}', '200'],
  ['smallest subnormal double', 'app.echo', '{"input":5e-324}', '200'],
  [
    'decimal fractions keep shortest round-trip form',
    'app.echo',
    '{"input":[0.1,0.30000000000000004,1E2,1e+21,123.456e-7]}',
    '200',
  ],
  ['duplicate "input" keys: last wins', 'app.describe', '{"input":1,"input":2}', '200'],
  ['duplicate keys inside the input: last wins', 'app.echo', '{"input":{"a":1,"b":2,"a":3}}', '200'],
  ['duplicate non-input keys around input', 'app.describe', '{"a":1,"input":"i","a":2}', '200'],
  [
    '"__proto__" key inside the input does not change the prototype',
    'app.protoInspect',
    '{"input":{"__proto__":{"polluted":true},"k":1}}',
    '200',
  ],
  [
    'top-level "__proto__" holding an input is not unwrapped',
    'app.describe',
    '{"__proto__":{"input":"sneaky"}}',
    '200',
  ],
  [
    '"constructor"/"prototype" keys',
    'app.protoInspect',
    '{"input":{"constructor":{"prototype":{"polluted":true}},"k":2}}',
    '200',
  ],
  ['5000 nested arrays', 'app.depth', nestedArrays(5000), deep],
  ['100 nested arrays', 'app.depth', nestedArrays(100), '200'],
  ['5000 nested objects', 'app.depth', nestedObjects(5000), deep],
  ['long string (100 KB)', 'app.length', `{"input":"${'x'.repeat(100 * 1024)}"}`, '200'],
  [
    'many keys',
    'app.echo',
    JSON.stringify({ input: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])) }),
    '200',
  ],
  [
    'key order is preserved (numeric-like keys follow JS rules)',
    'app.echo',
    '{"input":{"b":1,"a":2,"10":3,"2":4,"-1":5}}',
    '200',
  ],
  [
    'Runner type tags in the body (plain objects with JSON, typed values with the Serializer)',
    'app.describe',
    '{"input":{"when":{"__type":"Date","value":"2020-01-01T00:00:00.000Z"},"u":{"__type":"Undefined","value":null}}}',
    '200',
  ],
];

const eventBodyCases = [
  ['payload without returnPayload -> {"ok":true}', 'app.ev.wrap', '{"payload":1}', '200'],
  ['payload with returnPayload true -> result', 'app.ev.wrap', '{"payload":{"a":[1]},"returnPayload":true}', '200'],
  ['returnPayload truthy number', 'app.ev.wrap', '{"payload":1,"returnPayload":1}', '200'],
  ['returnPayload truthy string "false"', 'app.ev.wrap', '{"payload":1,"returnPayload":"false"}', '200'],
  ['returnPayload 0 is false', 'app.ev.wrap', '{"payload":1,"returnPayload":0}', '200'],
  ['returnPayload null is false', 'app.ev.wrap', '{"payload":1,"returnPayload":null}', '200'],
  ['returnPayload without payload -> payload undefined', 'app.ev.wrap', '{"returnPayload":true}', '200'],
  ['"input" is not used as event payload', 'app.ev.wrap', '{"input":1,"returnPayload":true}', '200'],
  ['empty body -> {"ok":true}', 'app.ev.wrap', '', '200'],
  ['array body', 'app.ev.wrap', '[1,2]', '200'],
  ['number body', 'app.ev.wrap', '5', '200'],
  ['null body', 'app.ev.wrap', 'null', '200'],
  ['string body', 'app.ev.wrap', '"s"', '200'],
  [
    'hook that returns nothing keeps the payload',
    'app.ev.noop',
    '{"payload":{"keep":"me"},"returnPayload":true}',
    '200',
  ],
  ['null payload returned', 'app.ev.noop', '{"payload":null,"returnPayload":true}', '200'],
  ['hook returning null replaces the payload', 'app.ev.toNull', '{"payload":{"a":1},"returnPayload":true}', '200'],
  ['hook returning 0 replaces the payload', 'app.ev.toZero', '{"payload":{"a":1},"returnPayload":true}', '200'],
  ['hook returning false replaces the payload', 'app.ev.toFalse', '{"payload":{"a":1},"returnPayload":true}', '200'],
  [
    'hook returning an empty string replaces the payload',
    'app.ev.toEmptyString',
    '{"payload":{"a":1},"returnPayload":true}',
    '200',
  ],
  ['invalid JSON -> 400', 'app.ev.wrap', '{"payload":', '400 INVALID_JSON'],
  [
    'duplicate returnPayload keys: last wins',
    'app.ev.wrap',
    '{"payload":1,"returnPayload":true,"returnPayload":false}',
    '200',
  ],
  ['big integer payload', 'app.ev.noop', '{"payload":123456789012345678901234567890,"returnPayload":true}', '200'],
];

for (const serializer of ['json', 'runner']) {
  describe(`body rules with ${serializer === 'json' ? 'plain JSON' : "Runner's Serializer"} on both sides (taken from the reference readJsonBody)`, () => {
    let pair;
    before(async () => {
      pair = await startPair(allHandlers(), { auth: AUTH, serializer });
    });
    after(async () => pair && pair.close());

    const forThisSerializer = (expected) => (typeof expected === 'string' ? expected : expected[serializer]);
    for (const [label, id, body, expected] of taskBodyCases) {
      it(`task: ${label} (same answer as the reference)`, async () => {
        await sameAnswer(pair, taskReq(id, body), forThisSerializer(expected), { label });
      });
    }
    for (const [label, id, body, expected] of eventBodyCases) {
      it(`event: ${label} (same answer as the reference)`, async () => {
        await sameAnswer(pair, eventReq(id, body), expected, { label });
      });
    }

    it('missing content-type: body is still parsed as JSON (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          method: 'POST',
          path: '/__runner/task/app.describe',
          headers: [authHeader()],
          body: '{"input":"no content type"}',
        },
        '200',
      );
    });
    it('no body and no content-length (same answer as the reference)', async () => {
      await sameAnswer(pair, { method: 'POST', path: '/__runner/task/app.describe', headers: [authHeader()] }, '200');
    });
    it('text/plain content-type: body is still parsed as JSON (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          method: 'POST',
          path: '/__runner/task/app.describe',
          headers: [authHeader(), ['Content-Type', 'text/plain']],
          body: '{"input":[1]}',
        },
        '200',
      );
    });
    it('content-type with charset parameter (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          method: 'POST',
          path: '/__runner/task/app.describe',
          headers: [authHeader(), ['Content-Type', 'application/json; charset=utf-8']],
          body: '{"input":"cs"}',
        },
        '200',
      );
    });
    it('repeated content-type headers (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          method: 'POST',
          path: '/__runner/task/app.describe',
          headers: [authHeader(), ['Content-Type', 'application/json'], ['Content-Type', 'application/json']],
          body: '{"input":"twice"}',
        },
        '200',
      );
    });
    it('chunked request body (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          ...taskReq('app.describe', undefined),
          chunked: true,
          chunks: ['{"inp', 'ut":{"a', '":1}}'],
        },
        '200',
      );
    });
    it('chunked request body with a UTF-8 character split across chunks (same answer as the reference)', async () => {
      const bytes = Buffer.from('{"input":"é😀"}', 'utf8');
      await sameAnswer(
        pair,
        {
          ...taskReq('app.length', undefined),
          chunked: true,
          chunks: [bytes.subarray(0, 11), bytes.subarray(11, 14), bytes.subarray(14)],
        },
        '200',
      );
    });
    it('body sent slowly in several writes (same answer as the reference)', async () => {
      await sameAnswer(
        pair,
        {
          ...taskReq('app.describe', undefined),
          parts: ['{"input"', ':', '"slow"', '}'],
          chunkDelayMs: 20,
        },
        '200',
      );
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
      '200',
    ],
    ['returning a BigInt', taskReq('typed.bigint', ''), '200'],
    ['returning undefined is encoded by the serializer', taskReq('app.returnUndefined', ''), '200'],
    ['returning a Date', taskReq('app.returnDate', ''), '200'],
    [
      'graph payload with shared references',
      taskReq(
        'typed.shared',
        '{"__graph":true,"version":1,"root":{"__ref":"o1"},"nodes":{"o2":{"kind":"object","value":{"a":1}},"o1":{"kind":"object","value":{"input":{"__ref":"i1"}}},"i1":{"kind":"object","value":{"x":{"__ref":"o2"},"y":{"__ref":"o2"}}}}}',
      ),
      '200',
    ],
    [
      'unknown __type -> 400 INVALID_JSON',
      taskReq('app.echo', '{"input":{"__type":"Nope","value":1}}'),
      '400 INVALID_JSON',
    ],
    [
      'invalid BigInt payload -> 400 INVALID_JSON',
      taskReq('app.echo', '{"input":{"__type":"BigInt","value":"12x"}}'),
      '400 INVALID_JSON',
    ],
    ['cyclic result cannot be serialized -> 500', taskReq('app.returnCyclic', ''), '500 INTERNAL_ERROR'],
    [
      'typed event payload with returnPayload',
      eventReq('typed.ev', '{"payload":{"__type":"Date","value":"1999-12-31T23:59:59.000Z"},"returnPayload":true}'),
      '200',
    ],
    [
      'typed error with data through the serializer',
      taskReq('app.throwBadRequest', '{"input":{"__type":"Date","value":"2001-01-01T00:00:00.000Z"}}'),
      '400 INTERNAL_ERROR',
    ],
  ];
  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});
