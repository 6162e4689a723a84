'use strict';

// The `health` option: probe paths served by the native side without waking
// JS (`GET`/`HEAD`; see README "Health checks"), checked here with a
// TypeError naming the field.

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// An absolute path of plain segments: no query, fragment, dot segments,
// empty segments or escapes, so that it is matched as requests normalise.
const PROBE_PATH = /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+$/;

function fail(field, expected) {
  throw new TypeError(`TunnelServer: option "${field}" must be ${expected}`);
}

/** The base path as the server normalises it (leading `/`, no trailing `/`). */
function normalizeBase(basePath) {
  let p = basePath ?? '/__runner';
  if (!p.startsWith('/')) p = `/${p}`;
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function checkProbePath(path, field, base) {
  if (typeof path !== 'string' || !PROBE_PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    fail(field, 'an absolute path such as "/healthz" (plain segments, no query)');
  }
  if (base === '/' || path === base || path.startsWith(`${base}/`)) {
    fail(field, `a path outside basePath (${base})`);
  }
  return path;
}

/**
 * `health: { path, readyPath, readyTimeoutMs }` as the native config's
 * `health`, or undefined when not given.
 */
function healthConfig(health, basePath) {
  if (health === undefined || health === null) return undefined;
  if (!isPlainObject(health)) fail('health', 'an object');
  const base = normalizeBase(basePath);
  const out = {};
  if (health.path !== undefined) out.path = checkProbePath(health.path, 'health.path', base);
  if (health.readyPath !== undefined) out.readyPath = checkProbePath(health.readyPath, 'health.readyPath', base);
  if (out.path === undefined && out.readyPath === undefined) fail('health', 'an object with path and/or readyPath');
  if (out.path !== undefined && out.path === out.readyPath) fail('health.readyPath', 'a path other than health.path');
  if (health.readyTimeoutMs !== undefined) {
    const n = health.readyTimeoutMs;
    if (!Number.isSafeInteger(n) || n < 1) fail('health.readyTimeoutMs', 'a positive integer (ms)');
    out.readyTimeoutMs = n;
  }
  return out;
}

module.exports = { healthConfig };
