'use strict';

// nodeExposure's config (`nativeExposure.with({ http: {...} })`) turned into
// TunnelServer options: base path, auth (tokens and validator tasks), CORS,
// limits, the app's serializer and logger, typed errors and abort reasons.

const { globals } = require('./peer.js');
const { safeLog } = require('./log.js');
const { resolveAppErrorExtra, clientClosedError } = require('./errors.js');
const { answerSerializer, failureMapper } = require('./calls.js');

/** The reference's resolveBasePath: a leading `/` added, a trailing `/` dropped. */
function resolveBasePath(basePath) {
  let p = basePath ?? '/__runner';
  if (!p.startsWith('/')) p = `/${p}`;
  if (p.endsWith('/') && p !== '/') p = p.slice(0, -1);
  return p;
}

/** Auth options: the token(s) as configured, plus validator tasks run as the reference's createAuthenticator. */
function authOptions(authCfg, store, taskRunner) {
  const validatorTasks = store.getTasksWithTag(globals.tags.authValidator);
  const auth = {};
  // `header: ''` makes the reference look up a header no request can carry: its
  // tokens never match, but it still counts as "token configured" (401, not 500).
  const tokensUnmatchable = authCfg?.header === '';
  if (authCfg?.token && !tokensUnmatchable) auth.token = authCfg.token;
  if (typeof authCfg?.header === 'string' && authCfg.header !== '') auth.header = authCfg.header;
  if (authCfg?.allowAnonymous === true) auth.allowAnonymous = true;
  if (validatorTasks.length > 0 || (authCfg?.token && tokensUnmatchable)) {
    auth.validate = async (info) => {
      const url = info.url ?? '/';
      const input = {
        headers: info.headers,
        method: info.method ?? 'GET',
        url,
        path: new URL(url, 'http://localhost').pathname,
      };
      for (const task of validatorTasks) {
        try {
          const result = await taskRunner.run(task, input);
          if (result?.ok) return true;
        } catch {
          // a failing validator is a "no", as in the reference
        }
      }
      return false;
    };
  }
  return auth;
}

/**
 * The TunnelServer options for the exposure's `http` config, `basePath`
 * already resolved; `deps` are the resource's dependencies.
 */
function serverOptions(http, basePath, { store, taskRunner, logger, serializer }) {
  const options = {
    // node's listen() also takes a numeric string
    port:
      typeof http.listen?.port === 'string' && /^\d+$/.test(http.listen.port)
        ? Number(http.listen.port)
        : (http.listen?.port ?? 0),
    host: http.listen?.host ?? '127.0.0.1',
    reusePort: http.listen?.reusePort ?? false,
    // One listener for the app's copies in this process's worker threads.
    share: http.share ?? false,
    basePath,
    auth: authOptions(http.auth, store, taskRunner),
    disableDiscovery: !!http.disableDiscovery,
    serializer: answerSerializer(serializer),
    logger: {
      error: (message, err) => safeLog(logger, 'error', message, { error: err }),
      warn: (message, data) => safeLog(logger, 'warn', message, data),
    },
    resolveError: (err) => resolveAppErrorExtra(store, err),
    mapError: failureMapper(store, logger),
  };
  if (http.cors !== undefined) options.cors = http.cors;
  if (http.tls !== undefined) options.tls = http.tls;
  // Options of this package beyond nodeExposure's (README "Running in production").
  if (http.health !== undefined) options.health = http.health;
  if (http.closeGraceMs !== undefined) options.closeGraceMs = http.closeGraceMs;
  if (http.limits?.json !== undefined || http.limits?.multipart !== undefined) {
    options.limits = {};
    if (http.limits.json !== undefined) options.limits.json = http.limits.json;
    if (http.limits.multipart !== undefined) options.limits.multipart = http.limits.multipart;
  }
  options.abortReason = clientClosedError;
  // The native server's own: the Prometheus endpoint and the access log.
  if (http.metrics !== undefined) options.metrics = http.metrics;
  if (http.onAccess !== undefined) options.onAccess = http.onAccess;
  // Load shedding and compression.
  for (const key of ['maxConnections', 'maxInFlight', 'retryAfterSeconds', 'compression']) {
    if (http[key] !== undefined) options[key] = http[key];
  }
  return options;
}

module.exports = { resolveBasePath, serverOptions };
