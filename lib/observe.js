'use strict';

// What the server shows of itself (the native side is src/http/metrics/,
// src/http/access.rs and src/bridge/observe.rs): the `metrics` and
// `onAccess` options, the shape of `stats()`, and the access log's
// deliveries to `onAccess`.

const { logError } = require('./logging.js');

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function fail(field, expected) {
  throw new TypeError(`TunnelServer: option "${field}" must be ${expected}`);
}

/** The base path as the native side normalises it (`normalize_base_path`). */
function normalizeBase(raw) {
  let path = raw.startsWith('/') ? raw : `/${raw}`;
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

/**
 * Checks `metrics` and `onAccess` into the native config (`config.metrics`,
 * `config.accessLog`) and the JS extras (`extras.metricsPath`,
 * `extras.onAccess`).
 */
function checkObserveOptions(options, config, extras) {
  const m = options.metrics;
  if (m !== undefined && m !== null) {
    if (!isPlainObject(m)) fail('metrics', 'an object ({ path, port })');
    const path = m.path === undefined ? '/metrics' : m.path;
    if (typeof path !== 'string' || !/^\/[^?#\s\\]*$/.test(path)) {
      fail('metrics.path', 'a path starting with "/" (no query, fragment, spaces or backslashes)');
    }
    let port = null;
    if (m.port !== undefined && m.port !== null) {
      if (!Number.isInteger(m.port) || m.port < 0 || m.port > 65535) fail('metrics.port', 'an integer from 0 to 65535');
      if (m.port !== 0 && m.port === config.port) fail('metrics.port', 'another port than "port"');
      port = m.port;
    }
    if (port === null) {
      const base = normalizeBase(config.basePath === undefined ? '/__runner' : config.basePath);
      if (base === '/' || path === base || path.startsWith(`${base}/`)) {
        fail('metrics.path', `outside basePath (${base}), or on a port of its own (metrics.port)`);
      }
    }
    config.metrics = { path, port };
    extras.metricsPath = path;
  }
  if (options.onAccess !== undefined && options.onAccess !== null) {
    if (typeof options.onAccess !== 'function') fail('onAccess', 'a function');
    config.accessLog = true;
    extras.onAccess = options.onAccess;
  }
}

/**
 * What the native side calls with a JSON array of finished requests: they
 * go to `onAccess` in one call. A failing `onAccess` (a throw or a rejected
 * promise) is logged and the server serves on.
 */
function accessDelivery(onAccess, logger) {
  const failed = (err) => logError(logger, 'onAccess', undefined, err);
  return (json) => {
    try {
      const out = onAccess(JSON.parse(json));
      if (out !== null && typeof out === 'object' && typeof out.then === 'function') out.then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  };
}

/** `server.stats()` from the native side's JSON (see index.d.ts, `ServerStats`). */
function shapeStats(json) {
  const raw = JSON.parse(json);
  const bounds = [...raw.le, Infinity];
  const histogram = (h) => ({
    count: h.counts[h.counts.length - 1],
    sum: h.sum,
    buckets: h.counts.map((count, i) => ({ le: bounds[i], count })),
  });
  const durations = {};
  for (const [kind, h] of Object.entries(raw.requestDurationSeconds)) durations[kind] = histogram(h);
  return {
    requests: raw.requests,
    requestDurationSeconds: durations,
    callsInFlight: raw.callsInFlight,
    openConnections: raw.openConnections,
    connections: raw.connections,
    jsQueueDepth: raw.jsQueueDepth,
    jsCalls: raw.jsCalls,
    jsBatchWaitSeconds: histogram(raw.jsBatchWaitSeconds),
    receivedBytes: raw.receivedBytes,
    sentBytes: raw.sentBytes,
    accessLogDropped: raw.accessLogDropped,
  };
}

module.exports = { checkObserveOptions, accessDelivery, shapeStats };
