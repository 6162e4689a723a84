'use strict';

// What a call is answered with once its handler has returned or thrown: the
// status and the error member, as nodeExposure answers. Pure functions,
// shared by the TunnelServer (lib/calls.js) and nativeExposure (runner.js).

const { NOT_FOUND_CODE, notFoundMessage } = require('../native.js');

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

/** Error members that never leave the server (the reference's sanitizeErrorResponse). */
const UNSAFE_ERROR_FIELDS = new Set(['stack', 'cause', 'sql']);

/**
 * Whether a result is written inside an array exactly as on its own: not
 * `undefined` (no body), a function or a symbol (nothing), nor an object
 * with `toJSON` (which is told its key).
 */
function joinable(value) {
  const type = typeof value;
  if (type === 'object') return value === null || typeof value.toJSON !== 'function';
  return type === 'number' || type === 'string' || type === 'boolean';
}

/** The default reason given to `ctx.signal` and `ctx.req` when the client goes away. */
function defaultAbortReason() {
  const err = new Error('Client Closed Request');
  err.name = 'AbortError';
  return err;
}

function isCancellation(err) {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'runner.errors.cancellation');
}

function isValidHttpCode(v) {
  return typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599;
}

/** A typed application error: what Runner's `r.error()` helpers throw. */
function isTypedError(err) {
  return (
    err instanceof Error &&
    typeof err.name === 'string' &&
    hasOwn(err, 'name') &&
    hasOwn(err, 'id') &&
    err.id === err.name &&
    hasOwn(err, 'data')
  );
}

/**
 * Thrown by a handler to answer with a protocol error of its choosing:
 * `{"ok":false,"error":{"message":M,"code":C,...extra}}` with `status`.
 */
class ProtocolError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.name = 'ProtocolError';
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/** The error member a ProtocolError is answered with. */
function protocolErrorMember(err) {
  return { message: err.message, code: err.code, ...(err.extra || {}) };
}

/** The status a ProtocolError is answered with: its own when valid, else 500. */
function protocolErrorStatus(err) {
  return isValidHttpCode(err.status) ? err.status : 500;
}

/** The default typed-error rule: what Runner's `r.error()` helpers throw. */
function defaultResolveError(err) {
  if (!isTypedError(err)) return undefined;
  return { id: err.name, data: err.data, httpCode: err.httpCode };
}

/** What `resolveError` (or, without one, the default rule) says of `err`; a rule that throws says "not typed". */
function resolveTypedError(err, resolveError) {
  try {
    return resolveError ? resolveError(err) : defaultResolveError(err);
  } catch {
    return undefined;
  }
}

/** The message an answer may show for `err`: its own only when it is a typed error (`typed`). */
function displayMessage(err, typed) {
  return typed && err instanceof Error && err.message ? err.message : 'Internal Error';
}

/**
 * The error member a typed error is answered with (`typed`: what the
 * typed-error rule resolved); its `httpCode`, when set, is the status.
 */
function typedErrorMember(err, typed) {
  const httpCode = isValidHttpCode(typed.httpCode) ? typed.httpCode : undefined;
  const error = { message: displayMessage(err, typed), code: 'INTERNAL_ERROR' };
  if (typeof typed.id === 'string') error.id = typed.id;
  if (typed.data !== undefined) error.data = typed.data;
  if (httpCode !== undefined) error.httpCode = httpCode;
  return error;
}

/**
 * What of an error member may leave the server with `status`, as the
 * reference's sanitizeErrorResponse decides: a 500 shows its message only
 * when typed (an `id`), other statuses drop the unsafe members.
 */
function sanitizeError(status, error) {
  if (status === 500) {
    const typed = typeof error.id === 'string';
    const clean = {
      message: typed && typeof error.message === 'string' ? error.message : 'Internal Error',
      code: typeof error.code === 'string' ? error.code : 'INTERNAL_ERROR',
    };
    if (typeof error.id === 'string') clean.id = error.id;
    if (error.data !== undefined) clean.data = error.data;
    if (isValidHttpCode(error.httpCode)) clean.httpCode = error.httpCode;
    return clean;
  }
  const clean = {};
  for (const [k, v] of Object.entries(error)) if (!UNSAFE_ERROR_FIELDS.has(k)) clean[k] = v;
  return clean;
}

/** The status of a `{ status, body }` error response (multipart's). */
function responseStatus(response) {
  return typeof response.status === 'number' ? response.status : 500;
}

/** The error member, sanitized, of a `{ status, body }` error response answered with `status`. */
function responseErrorMember(response, status) {
  return sanitizeError(
    status,
    (response.body && response.body.error) || { message: 'Internal Error', code: 'INTERNAL_ERROR' },
  );
}

/** The error member of a call (`kind`: KIND_TASK or KIND_EVENT) whose handler was unregistered after the native side looked it up. */
function notFoundMember(kind, id) {
  return { message: notFoundMessage(kind, id), code: NOT_FOUND_CODE };
}

module.exports = {
  joinable,
  defaultAbortReason,
  isCancellation,
  isValidHttpCode,
  ProtocolError,
  protocolErrorMember,
  protocolErrorStatus,
  resolveTypedError,
  displayMessage,
  typedErrorMember,
  sanitizeError,
  responseStatus,
  responseErrorMember,
  notFoundMember,
};
