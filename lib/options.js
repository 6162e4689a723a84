'use strict';

// Option checking: what a user passes to `new TunnelServer(...)` becomes the
// config the native side reads (`config`, plain JSON data) and what stays on
// the JS side (`extras`: serializer, logger, callbacks).

const { healthConfig } = require('./health.js');
const { normalizeTls } = require('./tls.js');

const { checkObserveOptions } = require('./observe.js');
const { jsonRuleOf } = require('./serializer-json.js');

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function fail(field, expected) {
  throw new TypeError(`TunnelServer: option "${field}" must be ${expected}`);
}

function checkStringList(value, field) {
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) {
    fail(field, 'an array of strings');
  }
  return value.slice();
}

function checkOrigin(origin, field) {
  if (origin === undefined || origin === null) return { kind: 'unset' };
  if (typeof origin === 'string') return { kind: 'exact', value: origin };
  if (Array.isArray(origin)) return { kind: 'list', value: checkStringList(origin, field) };
  if (origin instanceof RegExp || typeof origin === 'function') return { kind: 'dynamic' };
  return fail(field, 'a string, an array of strings, a RegExp or a function');
}

/** Validates user options into the config the native side reads. */
function normalizeOptions(options) {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) fail('options', 'an object');
  const config = { port: 0, disableDiscovery: false, workerThreads: 0 };
  const extras = {
    serializer: null,
    logger: console,
    originSpec: null,
    validate: null,
    closeGraceMs: 10000,
    resolveError: null,
    mapError: null,
    multipartLimits: undefined,
    abortReason: null,
  };

  if (options.port !== undefined) {
    const p = options.port;
    if (!Number.isInteger(p) || p < 0 || p > 65535) fail('port', 'an integer from 0 to 65535');
    config.port = p;
  }
  if (options.host !== undefined) {
    if (typeof options.host !== 'string' || options.host === '') fail('host', 'a non-empty string');
    config.host = options.host;
  }
  if (options.reusePort !== undefined) {
    if (typeof options.reusePort !== 'boolean') fail('reusePort', 'a boolean');
    if (options.reusePort && process.platform !== 'linux')
      fail('reusePort', 'false on this platform (SO_REUSEPORT spreads connections on Linux only)');
    config.reusePort = options.reusePort;
  }
  if (options.share !== undefined) {
    if (typeof options.share !== 'boolean') fail('share', 'a boolean');
    config.share = options.share;
  }
  if (options.basePath !== undefined) {
    if (typeof options.basePath !== 'string') fail('basePath', 'a string');
    config.basePath = options.basePath;
  }
  if (options.auth !== undefined) {
    const a = options.auth;
    if (!isPlainObject(a)) fail('auth', 'an object');
    const auth = { allowAnonymous: false, hasValidators: false };
    if (a.token !== undefined && a.token !== null) {
      if (typeof a.token === 'string') {
        // An empty string counts as "no token", as in nodeExposure.
        if (a.token !== '') auth.tokens = [a.token];
      } else if (Array.isArray(a.token)) {
        auth.tokens = checkStringList(a.token, 'auth.token');
      } else {
        fail('auth.token', 'a string or an array of strings');
      }
    }
    if (a.header !== undefined) {
      if (typeof a.header !== 'string' || a.header === '') fail('auth.header', 'a non-empty string');
      auth.header = a.header;
    }
    if (a.allowAnonymous !== undefined) {
      if (typeof a.allowAnonymous !== 'boolean') fail('auth.allowAnonymous', 'a boolean');
      auth.allowAnonymous = a.allowAnonymous;
    }
    if (a.validate !== undefined) {
      if (typeof a.validate !== 'function') fail('auth.validate', 'a function');
      extras.validate = a.validate;
      auth.hasValidators = true;
    }
    config.auth = auth;
  }
  let cors = options.cors;
  if (cors !== undefined) {
    if (!isPlainObject(cors)) fail('cors', 'an object');
  }
  if (options.corsOrigins !== undefined) {
    checkStringList(options.corsOrigins, 'corsOrigins');
    if (cors && cors.origin !== undefined) fail('corsOrigins', 'left out when cors.origin is set');
    cors = { ...(cors || {}), origin: options.corsOrigins };
  }
  if (cors !== undefined) {
    const out = { origin: checkOrigin(cors.origin, 'cors.origin'), credentials: false };
    if (out.origin.kind === 'dynamic') extras.originSpec = cors.origin;
    for (const key of ['methods', 'allowedHeaders', 'exposedHeaders']) {
      if (cors[key] !== undefined) out[key] = checkStringList(cors[key], `cors.${key}`);
    }
    if (cors.credentials !== undefined) {
      if (typeof cors.credentials !== 'boolean') fail('cors.credentials', 'a boolean');
      out.credentials = cors.credentials;
    }
    if (cors.maxAge !== undefined) {
      if (typeof cors.maxAge !== 'number' || !Number.isFinite(cors.maxAge)) fail('cors.maxAge', 'a finite number');
      out.maxAge = cors.maxAge;
    }
    if (cors.varyOrigin !== undefined) {
      if (typeof cors.varyOrigin !== 'boolean') fail('cors.varyOrigin', 'a boolean');
      out.varyOrigin = cors.varyOrigin;
    }
    config.cors = out;
  }
  if (options.limits !== undefined) {
    if (!isPlainObject(options.limits)) fail('limits', 'an object');
    const mp = options.limits.multipart;
    if (mp !== undefined) {
      if (!isPlainObject(mp)) fail('limits.multipart', 'an object');
      for (const [key, value] of Object.entries(mp)) {
        if (!Number.isSafeInteger(value) || value < 0) fail(`limits.multipart.${key}`, 'a non-negative integer');
      }
      extras.multipartLimits = { ...mp };
    }
    const json = options.limits.json;
    if (json !== undefined) {
      if (!isPlainObject(json)) fail('limits.json', 'an object');
      if (json.maxSize !== undefined) {
        if (!Number.isSafeInteger(json.maxSize) || json.maxSize < 0)
          fail('limits.json.maxSize', 'a non-negative integer');
        config.maxJsonBytes = json.maxSize;
      }
    }
  }
  if (options.disableDiscovery !== undefined) {
    if (typeof options.disableDiscovery !== 'boolean') fail('disableDiscovery', 'a boolean');
    config.disableDiscovery = options.disableDiscovery;
  }
  if (options.serializer !== undefined && options.serializer !== null) {
    const s = options.serializer;
    if (typeof s !== 'object' || typeof s.parse !== 'function' || typeof s.stringify !== 'function') {
      fail('serializer', 'an object with parse(text) and stringify(value) functions');
    }
    extras.serializer = s;
    config.customSerializer = !writesPlainJson(s);
  }
  if (options.logger !== undefined && options.logger !== null) {
    if (typeof options.logger !== 'object' || typeof options.logger.error !== 'function') {
      fail('logger', 'an object with an error(...) function');
    }
    extras.logger = options.logger;
  }
  if (options.abortReason !== undefined && options.abortReason !== null) {
    if (typeof options.abortReason !== 'function') fail('abortReason', 'a function');
    extras.abortReason = options.abortReason;
  }
  if (options.mapError !== undefined && options.mapError !== null) {
    if (typeof options.mapError !== 'function') fail('mapError', 'a function');
    extras.mapError = options.mapError;
  }
  if (options.resolveError !== undefined && options.resolveError !== null) {
    if (typeof options.resolveError !== 'function') fail('resolveError', 'a function');
    extras.resolveError = options.resolveError;
  }
  if (options.workerThreads !== undefined) {
    const n = options.workerThreads;
    if (!Number.isInteger(n) || n < 1 || n > 64) fail('workerThreads', 'an integer from 1 to 64');
    config.workerThreads = n;
  }
  for (const option of ['requestTimeout', 'keepAliveTimeout']) {
    const n = options[option];
    if (n === undefined) continue;
    if (!Number.isInteger(n) || n < 0) fail(option, 'a non-negative integer (ms; 0 = no limit)');
    config[`${option}Ms`] = n;
  }
  if (options.closeGraceMs !== undefined) {
    const n = options.closeGraceMs;
    if (!Number.isInteger(n) || n < 0) fail('closeGraceMs', 'a non-negative integer');
    extras.closeGraceMs = n;
  }
  const health = healthConfig(options.health, config.basePath);
  if (health !== undefined) config.health = health;
  if (options.tls !== undefined && options.tls !== null) config.tls = normalizeTls(options.tls, fail);
  checkObserveOptions(options, config, extras);
  checkProduction(options, config);
  // Which JSON bodies JS reads with JSON.parse (small ones joined per batch).
  if (extras.serializer === null) config.jsonCalls = 'plain';
  else config.jsonCalls = jsonRuleOf(extras.serializer) === null ? 'serializer' : 'runnerPlain';
  refuseLoneSurrogates(config, 'invalid server configuration');
  return { config, extras };
}

/** Load shedding (`maxConnections`, `maxInFlight`, `retryAfterSeconds`) and `compression`. */
function checkProduction(options, config) {
  for (const option of ['maxConnections', 'maxInFlight']) {
    const n = options[option];
    if (n === undefined || n === null) continue;
    if (!Number.isSafeInteger(n) || n < 1) fail(option, 'a positive integer (leave it out for no limit)');
    config[option] = n;
  }
  if (options.retryAfterSeconds !== undefined) {
    const n = options.retryAfterSeconds;
    if (!Number.isSafeInteger(n) || n < 0) fail('retryAfterSeconds', 'a non-negative integer (seconds)');
    config.retryAfterSecs = n;
  }
  const c = options.compression;
  if (c === undefined || c === null || c === false) return;
  if (c === true) {
    config.compression = {};
    return;
  }
  if (!isPlainObject(c)) fail('compression', 'a boolean or an object');
  const out = {};
  const ranges = [
    ['threshold', 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer (bytes)'],
    ['gzipLevel', 1, 9, 'an integer from 1 to 9'],
    ['brotliLevel', 0, 11, 'an integer from 0 to 11'],
  ];
  for (const [key, min, max, expected] of ranges) {
    const n = c[key];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || n < min || n > max) fail(`compression.${key}`, expected);
    out[key] = n;
  }
  config.compression = out;
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Throws, as the native side does for what it cannot read, when a string in
 * `value` holds a lone surrogate: napi would read it as U+FFFD, where the
 * JSON text the native side read before refused it.
 */
function refuseLoneSurrogates(value, what) {
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) {
      throw Object.assign(new Error(`${what}: a string holds a lone surrogate`), { code: 'InvalidArg' });
    }
  } else if (Array.isArray(value)) {
    for (const item of value) refuseLoneSurrogates(item, what);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      refuseLoneSurrogates(key, what);
      refuseLoneSurrogates(value[key], what);
    }
  }
}

/**
 * Whether a serializer writes the server's own envelopes exactly as
 * `JSON.stringify` does (true of Runner's Serializer); if not, those
 * envelopes are passed through it.
 */
function writesPlainJson(serializer) {
  const samples = [
    { ok: false, error: { message: 'Task a.b "c" not found', code: 'NOT_FOUND' } },
    { ok: true, result: { allowList: { enabled: true, tasks: ['a', 'b/c'], events: [] } } },
    { ok: true },
  ];
  try {
    return samples.every((v) => serializer.stringify(v) === JSON.stringify(v));
  } catch {
    return false;
  }
}

/** `setAllowList`'s argument as the native side reads it; `null` serves every registered id. */
function allowListInput(list) {
  if (list === null || list === undefined) return null;
  if (!isPlainObject(list)) throw new TypeError('TunnelServer.setAllowList: "list" must be an object or null');
  const ids = (value, field) => (value === undefined ? [] : dense(checkStringList(value, field)));
  const input = {
    enabled: Boolean(list.enabled),
    allowOpen: Boolean(list.allowOpen),
    tasks: ids(list.tasks, 'allowList.tasks'),
    events: ids(list.events, 'allowList.events'),
  };
  refuseLoneSurrogates(input, 'allow list');
  return input;
}

// Holes, which `every` passes over, are left out, as they always were.
const dense = (list) => list.filter(() => true);

/** The arguments of `registerTask` / `registerEvent` (`method`). */
function checkHandler(method, id, handler) {
  if (typeof id !== 'string' || id === '')
    throw new TypeError(`TunnelServer.${method}: "id" must be a non-empty string`);
  if (typeof handler !== 'function') throw new TypeError(`TunnelServer.${method}: "handler" must be a function`);
}

module.exports = { normalizeOptions, allowListInput, checkHandler };
