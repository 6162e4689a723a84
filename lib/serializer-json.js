'use strict';

// Where a serializer is known to read and write exactly what `JSON.parse`
// and `JSON.stringify` do, so that the server may use those (and join the
// calls of a batch into one of each) instead of it: Runner's own
// `Serializer` (`@bluelibs/runner` 5.5) with options that keep it so.
//
// Reading: the native side marks a body as JSON text when it holds no object
// key the Serializer reads specially (src/core/json.rs,
// `is_runner_plain_value`); other bodies go to the Serializer.
// Writing: `isPlainResult` below says when the Serializer's answer for a
// result is `{"ok":true,"result":` + `JSON.stringify(result)` + `}`. Both
// rules are checked against the Serializer itself by
// __test__/serializer-json.property.test.js.
//
// What the Serializer reads and writes specially, and so what these rules
// leave to it: the keys `__type`, `__graph` and `$runner.escape::...`
// (typed values, reference graphs, escaped keys), `__proto__`,
// `constructor` and `prototype` (dropped), `undefined`, non-finite numbers,
// BigInts, symbols and functions, any object that is not a plain object or
// array (Dates, Maps, Errors, buffers, class instances...), `toJSON`, and
// nesting past its depth limit. An accessor or a proxy in a result is read
// twice (once to check, once to write).

/** Nesting the rules accept: the native side's limit, far under the Serializer's 1000. */
const MAX_DEPTH = 64;

/**
 * Set on a serializer (by nativeExposure, on the one it wraps Runner's in)
 * to the rule that applies to it: `{ isPlain(value) }`, or `null`.
 */
const JSON_RULE = Symbol('runner-native.jsonRule');

const hasOwn = Object.prototype.hasOwnProperty;

/** A key the Serializer escapes or drops when it writes an object (and reads specially). */
function isMarkerKey(key) {
  switch (key) {
    case '__type':
    case '__graph':
    case '__proto__':
    case 'constructor':
    case 'prototype':
      return true;
    default:
      return key.startsWith('$runner.escape::');
  }
}

/** Whether `value`, `depth` levels below the answer's root, is written by the Serializer as by JSON. */
function isPlainAt(value, depth) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false; // undefined, bigint, symbol, function
  }
  if (value === null) return true;
  if (depth >= MAX_DEPTH || typeof value.toJSON === 'function') return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) {
      if (!isPlainAt(value[i], depth + 1)) return false; // a hole is undefined
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!hasOwn.call(value, key)) continue;
    if (isMarkerKey(key) || !isPlainAt(value[key], depth + 1)) return false;
  }
  return true;
}

/** Whether the Serializer writes `{ ok: true, result }` as `{"ok":true,"result":` + JSON.stringify(result) + `}`. */
function isPlainResult(result) {
  return isPlainAt(result, 1);
}

/**
 * The rule for one Runner Serializer: its type list is replaced whenever the
 * app adds a type (`addType`), which may claim plain objects, so from then
 * on every result goes to the Serializer.
 */
function runnerRule(serializer, types) {
  const registry = serializer.typeRegistry;
  return Object.freeze({ isPlain: (result) => registry.getTypeList() === types && isPlainResult(result) });
}

let runnerSerializer; // Runner's Serializer class, once looked up (null: not installed)
function runnerSerializerClass() {
  if (runnerSerializer === undefined) {
    try {
      runnerSerializer = require('@bluelibs/runner').Serializer ?? null;
    } catch {
      runnerSerializer = null;
    }
  }
  return runnerSerializer;
}

const sameKeys = (a, b) => a instanceof Set && a.size === b.size && [...b].every((k) => a.has(k));

/**
 * The rule for `serializer` when it is an instance of Runner's own
 * Serializer (not a subclass, no method of its own) whose options keep the
 * rules true: no pretty printing, a depth limit of at least MAX_DEPTH, the
 * default unsafe keys and only the built-in types; otherwise null.
 */
function isRunnersOwn(serializer) {
  if (serializer?.constructor?.name !== 'Serializer') return null;
  const Serializer = runnerSerializerClass();
  if (!Serializer || Object.getPrototypeOf(serializer) !== Serializer.prototype) return null;
  for (const method of ['parse', 'stringify', 'serialize', 'deserialize', 'jsonStringify']) {
    if (hasOwn.call(serializer, method)) return null;
  }
  try {
    const reference = new Serializer();
    const options = serializer.runtimeOptions;
    const types = serializer.typeRegistry.getTypeList();
    const builtIn = reference.typeRegistry.getTypeList();
    const fits =
      serializer.indent === undefined &&
      serializer.maxDepth >= MAX_DEPTH &&
      options.maxDepth >= MAX_DEPTH &&
      sameKeys(serializer.unsafeKeys, reference.unsafeKeys) &&
      options.unsafeKeys === serializer.unsafeKeys &&
      options.typeRegistry === serializer.typeRegistry &&
      types.length === builtIn.length &&
      types.every((t, i) => t === builtIn[i]);
    return fits ? runnerRule(serializer, types) : null;
  } catch {
    return null; // not the shape this package knows
  }
}

/** The rule for `serializer`: `{ isPlain(result) }` when the server may use JSON for it, else `null`. */
function jsonRuleOf(serializer) {
  if (serializer === null || typeof serializer !== 'object') return null;
  if (hasOwn.call(serializer, JSON_RULE)) return serializer[JSON_RULE];
  return isRunnersOwn(serializer);
}

module.exports = { JSON_RULE, MAX_DEPTH, jsonRuleOf, isPlainResult, isMarkerKey };
