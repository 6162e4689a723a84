'use strict';
const assert = require('node:assert/strict');
const { rawRequest } = require('./raw-client');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]+$/;

// Headers whose values must be identical on both servers.
const COMPARED_HEADERS = [
  'content-type',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
  'vary',
  'x-content-type-options',
  'x-frame-options',
  // Connection reuse and the idle limit announced with it (Node: 5 s by default).
  'connection',
  'keep-alive',
];

/** What the reference keeps as request id for the request spec (Node joins repeated headers with ", "). */
function expectedEchoedRequestId(spec) {
  if (!spec || !spec.headers) return undefined;
  const values = spec.headers
    .filter(([k]) => k.toLowerCase() === 'x-runner-request-id')
    .map(([, v]) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v)).trim());
  if (values.length === 0) return undefined;
  const joined = values.join(', ').trim();
  if (!joined || joined.length > 128 || !REQUEST_ID_RE.test(joined)) return undefined;
  return joined;
}

function describeRes(res) {
  return `${res.status} ${JSON.stringify(res.headers)} ${res.body.toString('utf8').slice(0, 500)}`;
}

/**
 * Compare a reference answer with a native answer.
 * opts.spec: the request spec that produced them (to know the client's request id)
 * opts.method: request method (HEAD has no body)
 */
function compare(ref, nat, opts = {}) {
  const ctx = opts.label ? `[${opts.label}] ` : '';
  const info = `\n  reference: ${describeRes(ref)}\n  native:    ${describeRes(nat)}`;
  assert.equal(nat.status, ref.status, `${ctx}status differs${info}`);
  assert.equal(nat.body.toString('utf8'), ref.body.toString('utf8'), `${ctx}body differs${info}`);
  assert.ok(Buffer.compare(nat.body, ref.body) === 0, `${ctx}body bytes differ${info}`);
  for (const h of COMPARED_HEADERS) {
    assert.equal(nat.headers[h], ref.headers[h], `${ctx}header ${h} differs${info}`);
  }

  // x-runner-request-id
  const sent = expectedEchoedRequestId(opts.spec);
  const refId = ref.headers['x-runner-request-id'];
  const natId = nat.headers['x-runner-request-id'];
  if (sent !== undefined && refId === sent) {
    assert.equal(natId, sent, `${ctx}x-runner-request-id must echo the client's id${info}`);
  } else if (refId === undefined) {
    assert.equal(natId, undefined, `${ctx}reference sends no x-runner-request-id here${info}`);
  } else {
    assert.match(refId, UUID_RE, `${ctx}reference request id not UUID-shaped (harness assumption)`);
    assert.match(String(natId), UUID_RE, `${ctx}native x-runner-request-id must be a fresh UUID${info}`);
  }

  // content-length must match the body
  const method = (opts.method ?? opts.spec?.method ?? 'POST').toUpperCase();
  for (const [name, res] of [
    ['reference', ref],
    ['native', nat],
  ]) {
    const cl = res.headers['content-length'];
    if (res.status === 204 || res.status === 304) {
      assert.ok(cl === undefined || cl === '0', `${ctx}${name}: ${res.status} with content-length ${cl}`);
      continue;
    }
    if (method === 'HEAD') continue;
    if (ref.headers['content-length'] !== undefined) {
      assert.notEqual(cl, undefined, `${ctx}${name}: missing content-length${info}`);
    }
    if (cl !== undefined)
      assert.equal(Number(cl), res.body.length, `${ctx}${name}: content-length does not match the body`);
  }
  if (method === 'HEAD') {
    assert.equal(
      nat.headers['content-length'],
      ref.headers['content-length'],
      `${ctx}HEAD content-length differs${info}`,
    );
  }
}

/**
 * What a case expects of an answer, from the protocol: `'404 NOT_FOUND'` (the status and the
 * error's `code`), `'200'` (the status alone), or `{ status, code }`.
 */
function parseExpected(expected) {
  if (typeof expected === 'string') {
    const m = /^(\d{3})(?: ([A-Z_]+))?$/.exec(expected);
    if (!m) throw new Error(`expected answer ${JSON.stringify(expected)} is not "STATUS" or "STATUS CODE"`);
    return { status: Number(m[1]), code: m[2] };
  }
  if (expected && Number.isInteger(expected.status)) return { status: expected.status, code: expected.code };
  throw new Error('a differential case needs its expected status ("404 NOT_FOUND", "200" or { status, code })');
}

/** The `error.code` of a JSON error answer (undefined when the body has none). */
function errorCode(res) {
  try {
    const body = JSON.parse(res.body.toString('utf8'));
    return body && body.error ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

/** Asserts that `res` has the expected status and, when one is expected, error code. */
function assertExpected(res, expected, who, label) {
  const { status, code } = parseExpected(expected);
  const ctx = label ? `[${label}] ` : '';
  const seen = `${res.status} ${res.body.toString('utf8').slice(0, 300)}`;
  assert.equal(res.status, status, `${ctx}${who} answered ${seen}; expected status ${status}`);
  if (code !== undefined) assert.equal(errorCode(res), code, `${ctx}${who} answered ${seen}; expected code ${code}`);
}

/**
 * Send the same raw request to both servers (reference first), compare the answers, and check
 * that both have the `expected` status (and error code): see parseExpected. Comparing alone would
 * let both servers break the same way. Returns { ref, nat }.
 */
async function sameAnswer(pair, spec, expected, opts = {}) {
  parseExpected(expected); // a case without its expected answer is a harness error, before any request
  let ref = await rawRequest(pair.ref, spec);
  if (pair.refOpen && ref.status === 403) {
    // id outside the allow-list: the standalone server answers like the open reference
    ref = await rawRequest(pair.refOpen, spec);
  }
  let nat = await rawRequest(pair.nat, spec);
  if (pair.nat.open && nat.status === 403) nat = await rawRequest(pair.nat.open, spec); // RUNNER_NATIVE_SELFTEST only
  compare(ref, nat, { ...opts, spec });
  assertExpected(ref, expected, 'the reference', opts.label);
  assertExpected(nat, expected, 'the native server', opts.label);
  return { ref, nat };
}

module.exports = {
  compare,
  sameAnswer,
  assertExpected,
  parseExpected,
  errorCode,
  expectedEchoedRequestId,
  UUID_RE,
  COMPARED_HEADERS,
};
