'use strict';
// The JSON fast path for Runner's own Serializer (lib/serializer-json.js), checked against that
// Serializer on many thousands of generated values and texts: where the native side marks a
// body as JSON text (isRunnerPlainJson, the function the HTTP worker uses), JSON.parse must give
// exactly what Serializer#parse gives; where isPlainResult says a result is plain, the answer
// written with JSON.stringify must be byte for byte Serializer#stringify({ ok: true, result }).
// SERIALIZER_JSON_SEED=<n> replays a run; the seed is printed when a case fails.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { Serializer } = require('@bluelibs/runner');
const { isRunnerPlainJson, OK_RESULT_PREFIX, OK_RESULT_SUFFIX } = require('../native.js');
const { jsonRuleOf, isPlainResult, MAX_DEPTH } = require('../lib/serializer-json.js');
const { answerSerializer } = require('../lib/runner/calls.js');

const SEED = Number(process.env.SERIALIZER_JSON_SEED) || Math.floor(Math.random() * 2 ** 31);
const CASES = Number(process.env.SERIALIZER_JSON_CASES) || 12000;

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Structural identity: same types, prototypes, own keys in the same order, property attributes
 * and values (Object.is, so -0 and NaN count). Returns a path to the first difference, or null.
 */
function difference(a, b, path = '$', seen = new Map()) {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (a === null || typeof a !== 'object') return Object.is(a, b) ? null : `${path}: ${String(a)} vs ${String(b)}`;
  if (b === null) return `${path}: object vs null`;
  if (seen.get(a) === b) return null;
  seen.set(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes differ`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs not`;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i]))
    return `${path}: keys ${JSON.stringify(ka.map(String))} vs ${JSON.stringify(kb.map(String))}`;
  for (const k of ka) {
    const da = Object.getOwnPropertyDescriptor(a, k);
    const db = Object.getOwnPropertyDescriptor(b, k);
    for (const attr of ['enumerable', 'writable', 'configurable']) {
      if (da[attr] !== db[attr]) return `${path}.${String(k)}: ${attr} differs`;
    }
    if ('get' in da || 'get' in db) return `${path}.${String(k)}: an accessor`;
    const d = difference(da.value, db.value, `${path}.${String(k)}`, seen);
    if (d) return d;
  }
  return null;
}

const KEYS = [
  'a',
  'b',
  'input',
  'payload',
  'value',
  'id',
  '0',
  '7',
  '10',
  '-1',
  '1.5',
  '',
  'é',
  '😀',
  'a b',
  'quote"d',
  'back\\slash',
  'new\nline',
  '__type',
  '__graph',
  '__ref',
  '__proto__',
  'constructor',
  'prototype',
  '$runner.escape::',
  '$runner.escape::__type',
  '$runner.escape:',
  '$runner',
  '_type',
  '__types',
  '__typ',
  'toJSON',
  'hasOwnProperty',
  'root',
  'nodes',
  'version',
];
const STRINGS = ['', 'x', '__type', '$runner.escape::a', 'Date', '"', '\\', '\u0000\u001f', 'é😀', '\ud800', '\udc00x'];

class Point {
  constructor(x) {
    this.x = x;
  }
}

/** A random value of the kinds the Serializer treats specially and the kinds it does not. */
function generator(random) {
  const int = (n) => Math.floor(random() * n);
  const pick = (list) => list[int(list.length)];
  const pool = []; // objects made so far, to repeat them (and make cycles)

  const string = () =>
    random() < 0.5
      ? pick(STRINGS)
      : Array.from({ length: int(8) }, () =>
          String.fromCharCode(pick([32 + int(95), int(0x3000), 0xd800 + int(0x800)])),
        ).join('');
  const number = () =>
    pick([0, -0, 1, -1, 42, 3.5, -1e-7, 1e21, 2 ** 53 + 2, Number.MAX_VALUE, NaN, Infinity, -Infinity, int(1e6)]);

  function leaf() {
    const r = int(40);
    if (r < 6) return string();
    if (r < 12) return number();
    if (r < 15) return random() < 0.5;
    if (r < 18) return null;
    if (r === 18) return undefined;
    if (r === 19) return BigInt(int(1000)) - 500n;
    if (r === 20) return pick([Symbol.for('s'), Symbol('local'), Symbol.iterator]);
    if (r === 21) return () => 1;
    if (r === 22) return new Date(random() < 0.9 ? int(2e12) : NaN);
    if (r === 23) return /a+b/gi;
    if (r === 24) return new Map([[string(), number()]]);
    if (r === 25) return new Set([1, 'x']);
    if (r === 26) return new Error('boom');
    if (r === 27) return new URL('http://localhost/a?b=1');
    if (r === 28) return Buffer.from('hi');
    if (r === 29) return new Uint8Array([1, 2, 3]);
    if (r === 30) return new Point(number());
    if (r === 31) return pick([new String('boxed'), new Number(3), new Boolean(false)]);
    if (r === 32 && pool.length) return pick(pool); // a repeated reference
    return string();
  }

  function object(depth) {
    const r = int(30);
    let o;
    if (r === 0) o = Object.create(null);
    else o = {};
    const n = int(5);
    for (let i = 0; i < n; i++) {
      const key = random() < 0.3 ? pick(KEYS) : pick(['a', 'b', 'c', 'x', 'y', 'items', 'n']);
      const value = value_(depth + 1);
      if (key === '__proto__' || random() < 0.03) {
        Object.defineProperty(o, key, { value, enumerable: random() < 0.8, writable: true, configurable: true });
      } else {
        o[key] = value;
      }
    }
    if (r === 1) o.toJSON = () => 'custom';
    if (r === 2) Object.defineProperty(o, 'toJSON', { value: () => 'hidden', enumerable: false });
    if (r === 3) Object.defineProperty(o, 'fixed', { get: () => 7, enumerable: true });
    if (r === 4) o[Symbol('k')] = 1;
    if (r === 5) o.self = o; // a cycle
    pool.push(o);
    return o;
  }

  function array(depth) {
    const n = int(5);
    const a = [];
    for (let i = 0; i < n; i++) a.push(value_(depth + 1));
    const r = int(30);
    if (r === 0) a.length += 1; // a hole
    if (r === 1) a.extra = 'ignored';
    if (r === 2) a.toJSON = () => 'custom';
    if (r === 3) a.push(a); // a cycle
    pool.push(a);
    return a;
  }

  function nested(levels, inner) {
    let v = inner;
    for (let i = 0; i < levels; i++) v = random() < 0.5 ? [v] : { n: v };
    return v;
  }

  function value_(depth = 0) {
    if (depth > 6) return leaf();
    const r = int(20);
    if (r < 7) return leaf();
    if (r < 13) return object(depth);
    if (r < 18) return array(depth);
    if (r === 18) return nested(MAX_DEPTH - 3 + int(6), leaf());
    return int(10) === 0 ? nested(990 + int(20), 1) : leaf();
  }

  return { value: () => value_(0), int, pick, random };
}

/** Texts: JSON and Serializer output of generated values, then edited (escapes, spaces, damage). */
function texts(g, serializer) {
  const { int, pick, random } = g;
  function base() {
    const v = g.value();
    const r = int(6);
    try {
      if (r === 0) return serializer.stringify({ input: v });
      if (r === 1) return serializer.serialize(v); // graph mode: __graph, __ref
      if (r === 2) return serializer.stringify(v);
      const text = JSON.stringify(r === 3 ? { input: v } : v);
      return text === undefined ? 'null' : text;
    } catch {
      return '{"input":' + int(100) + '}';
    }
  }
  function edit(text) {
    const r = int(12);
    const at = int(text.length + 1);
    if (r === 0) return text.slice(0, at); // truncated
    if (r === 1) return text.slice(0, at) + pick(['x', ',', '}', ']', '"', '\\', '\u0000', ' ', '\n']) + text.slice(at);
    if (r === 2) return text.replace(/"_/, '"\\u005f'); // a key spelt with an escape
    if (r === 3) return text.replace(/"a/, '"\\u0061'); // an escape in a key or a value
    if (r === 4) return ` \t${text}\r\n`;
    if (r === 5) return text.replace(/^\{/, '{"a":1,"a":'.concat('2,')); // duplicate keys
    if (r === 6) return '\ufeff' + text;
    if (r === 7) return text.replace(/:/g, ' : ');
    if (r === 8) return `{"input":${text},"__proto__":{"x":1}}`;
    if (r === 9) return `{"input":{"constructor":{"prototype":{"p":1}}},"v":${text}}`;
    return text;
  }
  return () => (random() < 0.6 ? edit(base()) : base());
}

function outcome(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, error: `${err?.name}: ${err?.message}` };
  }
}

const CONFIGS = [
  ['default', {}],
  ['maxDepth at the rule limit', { maxDepth: MAX_DEPTH }],
  ['maxDepth Infinity', { maxDepth: Infinity }],
  ['allowedTypes', { allowedTypes: ['Date'] }],
];

describe('the JSON fast path gives what Runner’s Serializer gives', () => {
  for (const [name, options] of CONFIGS) {
    const serializer = new Serializer(options);

    it(`${name}: the rule applies to it`, () => {
      assert.notEqual(jsonRuleOf(serializer), null);
      assert.notEqual(jsonRuleOf(answerSerializer(serializer)), null);
    });

    it(`${name}: a body marked as JSON text parses with JSON.parse as with Serializer#parse (seed ${SEED})`, () => {
      const g = generator(rng(SEED));
      const next = texts(g, serializer);
      let marked = 0;
      for (let i = 0; i < CASES; i++) {
        const text = next();
        if (!isRunnerPlainJson(Buffer.from(text))) continue;
        marked++;
        const fast = outcome(() => JSON.parse(text));
        const ref = outcome(() => serializer.parse(text));
        const label = `case ${i} (SERIALIZER_JSON_SEED=${SEED}): ${JSON.stringify(text).slice(0, 300)}`;
        assert.ok(fast.ok && ref.ok, `${label}: ${fast.error ?? ref.error}`);
        assert.equal(difference(fast.value, ref.value), null, label);
      }
      // The generator reaches both sides of the rule.
      assert.ok(marked > CASES * 0.15, `only ${marked} of ${CASES} texts were marked`);
      assert.ok(marked < CASES * 0.85, `${marked} of ${CASES} texts were marked`);
    });

    it(`${name}: a result called plain is written by JSON.stringify as by Serializer#stringify (seed ${SEED})`, () => {
      const g = generator(rng(SEED ^ 0x5bd1e995));
      let plain = 0;
      for (let i = 0; i < CASES; i++) {
        const result = g.value();
        if (!isPlainResult(result)) continue;
        plain++;
        const label = `case ${i} (SERIALIZER_JSON_SEED=${SEED})`;
        const ref = outcome(() => serializer.stringify({ ok: true, result }));
        assert.ok(ref.ok, `${label}: the Serializer failed on a plain result: ${ref.error}`);
        assert.equal(OK_RESULT_PREFIX + JSON.stringify(result) + OK_RESULT_SUFFIX, ref.value, label);
        // Joined with others of its round, it is written as alone (lib/wire.js).
        assert.equal(JSON.stringify([1, result, 'x']), `[1,${JSON.stringify(result)},"x"]`, label);
      }
      assert.ok(plain > CASES * 0.15, `only ${plain} of ${CASES} results were plain`);
      assert.ok(plain < CASES * 0.85, `${plain} of ${CASES} results were plain`);
    });
  }

  it('the depth limits meet: the deepest marked body and plain result are within the Serializer’s', () => {
    const serializer = new Serializer({ maxDepth: MAX_DEPTH });
    const deepest = '['.repeat(MAX_DEPTH) + '1' + ']'.repeat(MAX_DEPTH);
    assert.equal(isRunnerPlainJson(Buffer.from(deepest)), true);
    assert.equal(difference(JSON.parse(deepest), serializer.parse(deepest)), null);
    const deeper = '[' + deepest + ']';
    assert.equal(isRunnerPlainJson(Buffer.from(deeper)), false);
    assert.throws(() => serializer.parse(deeper), /depth/i);
    let result = 1;
    for (let i = 0; i < MAX_DEPTH - 1; i++) result = [result];
    assert.equal(isPlainResult(result), true);
    assert.equal(
      serializer.stringify({ ok: true, result }),
      OK_RESULT_PREFIX + JSON.stringify(result) + OK_RESULT_SUFFIX,
    );
    assert.equal(isPlainResult([result]), false);
    assert.throws(() => serializer.stringify({ ok: true, result: [result] }), /depth/i);
  });
});

describe('the rule is refused to serializers it was not proven for', () => {
  const refused = [
    ['pretty printing', new Serializer({ pretty: true })],
    ['a lower maxDepth', new Serializer({ maxDepth: MAX_DEPTH - 1 })],
    [
      'a type of the app',
      (() => {
        const s = new Serializer();
        s.addType({ id: 'Money', is: (v) => v?.currency !== undefined, serialize: (v) => v, deserialize: (v) => v });
        return s;
      })(),
    ],
    ['a subclass', new (class Mine extends Serializer {})()],
    ['a method of its own', Object.assign(new Serializer(), { stringify: () => '{}' })],
    ['a look-alike', { constructor: { name: 'Serializer' }, parse: JSON.parse, stringify: JSON.stringify }],
    ['JSON itself', { parse: JSON.parse, stringify: JSON.stringify }],
  ];
  for (const [name, serializer] of refused) {
    it(`${name}: the general path`, () => {
      assert.equal(jsonRuleOf(serializer), null);
      assert.equal(jsonRuleOf(answerSerializer(serializer)), null);
    });
  }

  it('a type the app adds after the rule was taken turns it off for results', () => {
    const s = new Serializer();
    const rule = jsonRuleOf(s);
    const money = { currency: 'EUR', amount: 1 };
    assert.equal(rule.isPlain(money), true);
    s.addType({ id: 'Money', is: (v) => v?.currency !== undefined, serialize: (v) => v, deserialize: (v) => v });
    assert.equal(rule.isPlain(money), false, 'the Serializer now writes it as a typed value');
    assert.equal(jsonRuleOf(s), null);
  });

  it('the app type case shows why: the Serializer types a plain object the rule would pass', () => {
    const s = refused[2][1];
    const money = { currency: 'EUR', amount: 1 };
    assert.equal(isPlainResult(money), true);
    assert.notEqual(
      s.stringify({ ok: true, result: money }),
      OK_RESULT_PREFIX + JSON.stringify(money) + OK_RESULT_SUFFIX,
    );
  });
});
