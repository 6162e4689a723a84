'use strict';
// Shared handlers, typed errors and request-spec builders for the differential tests.
const { r, cancellationError } = require('@bluelibs/runner');

const TOKEN = 'secret-token';
const BASE = '/__runner';

// Typed application errors (Runner `r.error(...)`): the reference only treats them as typed
// when registered in its store, so they are passed as `errors` to startReference.
const typedErrors = {
  teapot: r
    .error('test.errors.teapot')
    .httpCode(418)
    .format((d) => `Teapot: ${d.reason}`)
    .build(),
  badRequest: r.error('test.errors.badRequest').httpCode(400).build(), // default message: JSON of data
  noHttpCode: r
    .error('test.errors.noHttpCode')
    .format(() => 'typed without http code')
    .build(),
  explicit500: r
    .error('test.errors.explicit500')
    .httpCode(500)
    .format(() => 'typed with httpCode 500')
    .build(),
  remediation: r
    .error('test.errors.remediation')
    .httpCode(422)
    .format(() => 'Unprocessable thing')
    .remediation('Send a better thing')
    .build(),
};
const errorList = Object.values(typedErrors);

function arrayDepth(v) {
  let d = 0;
  while (Array.isArray(v)) {
    d += 1;
    v = v[0];
  }
  return d;
}
function objectDepth(v) {
  let d = 0;
  while (v && typeof v === 'object' && !Array.isArray(v)) {
    d += 1;
    v = v.a;
  }
  return d;
}

const describeInput = (input) => ({
  type: input === null ? 'null' : Array.isArray(input) ? 'array' : typeof input,
  value: input === undefined ? '<undefined>' : input,
});

const taskHandlers = {
  'app.echo': async (input) => input,
  'app.describe': async (input) => describeInput(input),
  'app.protoInspect': async (input) => ({
    ownKeys: input && typeof input === 'object' ? Object.keys(input) : null,
    protoIsObjectPrototype:
      input && typeof input === 'object' ? Object.getPrototypeOf(input) === Object.prototype : null,
    inheritedPolluted: input && typeof input === 'object' ? (input.polluted ?? null) : null,
    globalPolluted: {}.polluted ?? null,
  }),
  'app.depth': async (input) => ({ arrays: arrayDepth(input), objects: objectDepth(input) }),
  'app.length': async (input) =>
    typeof input === 'string'
      ? { length: input.length, codes: Array.from(input).map((c) => c.codePointAt(0)) }
      : describeInput(input),
  'app.returnUndefined': async () => undefined,
  'app.returnNull': async () => null,
  'app.returnBigInt': async () => 10n,
  'app.returnCyclic': async () => {
    const o = { a: 1 };
    o.self = o;
    return o;
  },
  'app.returnFunction': async () => ({ a: 1, f: () => 1 }),
  'app.returnDate': async () => new Date(0),
  'app.returnString': async () => 'héllo "wörld" \u2028 </script>',
  'app.throwPlain': async () => {
    const e = new Error('secret detail that must not leak');
    e.sql = 'SELECT 1';
    throw e;
  },
  'app.throwString': async () => {
    // eslint-disable-next-line no-throw-literal
    throw 'a string was thrown';
  },
  'app.throwUndefined': async () => {
    // eslint-disable-next-line no-throw-literal
    throw undefined;
  },
  'app.throwTeapot': async () => typedErrors.teapot.throw({ reason: 'short and stout' }),
  'app.throwBadRequest': async (input) =>
    typedErrors.badRequest.throw({ field: 'name', got: input ?? null, nested: { list: [1, 2] } }),
  'app.throwNoHttpCode': async () => typedErrors.noHttpCode.throw({ k: 'v' }),
  'app.throwExplicit500': async () => typedErrors.explicit500.throw({ k: 1 }),
  'app.throwRemediation': async () => typedErrors.remediation.throw({}),
  'app.throwCancellation': async () => cancellationError.throw({ reason: 'handler gave up' }),
  'app.throwTypedLikeObject': async () => {
    // a plain object shaped like a typed error is not an Error
    // eslint-disable-next-line no-throw-literal
    throw {
      name: 'test.errors.teapot',
      id: 'test.errors.teapot',
      message: 'not an Error',
      data: { a: 1 },
      httpCode: 418,
    };
  },
  'app.throwErrorWithData': async () => {
    // a library error carrying `data` (name "Error") is not a typed application error
    throw Object.assign(new Error('db failed: password=hunter2'), { data: { password: 'hunter2' } });
  },
  'app.throwTypeErrorWithData': async () => {
    throw Object.assign(new TypeError('bad type detail'), { data: { secret: 1 }, httpCode: 422 });
  },
  'app.throwErrorWithHttpCode': async () => {
    throw Object.assign(new Error('has an httpCode only'), { httpCode: 418 });
  },
  'app.returnLarge': async () => ({ big: 'x'.repeat(1024 * 1024), tail: 'é😀' }),
  'app.requestId': async (input, ctx) => ({ requestId: ctx.requestId ?? null }),
  // ids exercising the router
  'a/b': async () => 'slash id',
  'a.b.c': async () => 'dotted id',
  été: async () => 'unicode id',
  'with space': async () => 'space id',
  '%41': async () => 'literal percent id',
  'a+b': async () => 'plus id',
};

const eventHandlers = {
  'app.ev.wrap': async (payload) => ({ wrapped: payload === undefined ? '<undefined>' : payload }),
  'app.ev.noop': async () => undefined,
  'app.ev.toNull': async () => null,
  'app.ev.toZero': async () => 0,
  'app.ev.toFalse': async () => false,
  'app.ev.toEmptyString': async () => '',
  'app.ev.throwTeapot': async () => typedErrors.teapot.throw({ reason: 'from an event' }),
  'app.ev.throwPlain': async () => {
    throw new Error('event failure detail');
  },
  'app.ev.throwCancellation': async () => cancellationError.throw({ reason: 'event gave up' }),
};

/**
 * Where a handler set can be loaded from again (a worker thread sharing the listener:
 * servers.js). A set given more ids after it is made keeps its tag: the worker serves the
 * set's own ids, the added ones are served by the main thread only (calls go to a sharer
 * that has the id); replacing one of the set's handlers would make the two differ.
 */
const HANDLERS_SOURCE = Symbol.for('runner-native.test.handlers-source');

const allHandlers = () =>
  Object.defineProperty(
    { tasks: { ...taskHandlers }, events: { ...eventHandlers }, errors: errorList },
    HANDLERS_SOURCE,
    { value: { module: __filename, name: 'allHandlers' } },
  );

const authHeader = (token = TOKEN) => ['x-runner-token', token];
const jsonHeader = ['Content-Type', 'application/json'];

/** A request spec for POST {base}/task/{rawId} with the test token. rawId is used verbatim. */
function taskReq(rawId, body, { headers = [], base = BASE, method = 'POST', auth = true } = {}) {
  return {
    method,
    path: `${base}/task/${rawId}`,
    headers: [...(auth ? [authHeader()] : []), ...(body !== undefined ? [jsonHeader] : []), ...headers],
    body,
  };
}
function eventReq(rawId, body, { headers = [], base = BASE, method = 'POST', auth = true } = {}) {
  return {
    method,
    path: `${base}/event/${rawId}`,
    headers: [...(auth ? [authHeader()] : []), ...(body !== undefined ? [jsonHeader] : []), ...headers],
    body,
  };
}
function discoveryReq({ headers = [], base = BASE, method = 'GET', auth = true } = {}) {
  return { method, path: `${base}/discovery`, headers: [...(auth ? [authHeader()] : []), ...headers] };
}

/** A promise with its resolve/reject handles, for handlers that report to a test. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

module.exports = {
  deferred,
  TOKEN,
  BASE,
  typedErrors,
  errorList,
  taskHandlers,
  eventHandlers,
  allHandlers,
  authHeader,
  jsonHeader,
  taskReq,
  eventReq,
  discoveryReq,
  describeInput,
};
