'use strict';

// How a failed Runner task or event is answered: typed errors are the
// store's error helpers (as the reference's resolveAppErrorExtra decides),
// everything else is a sanitized 500; a client that went away is Runner's
// cancellation error.

const { cancellationError } = require('./peer.js');
const { ProtocolError } = require('../../index.js');
const { isValidHttpCode, displayMessage, sanitizeError } = require('../outcome.js');

const isRecord = (v) => !!v && typeof v === 'object';

/** The reference's resolveAppErrorExtra: typed errors are those of the store's error helpers. */
function resolveAppErrorExtra(store, error) {
  try {
    for (const helper of store.errors.values()) {
      if (helper.is(error)) {
        if (!isRecord(error)) {
          return {
            id: undefined,
            data: undefined,
            httpCode: isValidHttpCode(helper.httpCode) ? helper.httpCode : undefined,
          };
        }
        const id = typeof error.name === 'string' ? error.name : undefined;
        const runtimeHttpCode = error.httpCode;
        const httpCode = isValidHttpCode(runtimeHttpCode)
          ? runtimeHttpCode
          : isValidHttpCode(helper.httpCode)
            ? helper.httpCode
            : undefined;
        return { id, data: error.data, httpCode };
      }
    }
  } catch {
    // as the reference: a throwing helper means "not typed"
  }
  return undefined;
}

/**
 * The answer the reference's handleRequestError gives (jsonErrorResponse +
 * sanitizeErrorResponse), as a ProtocolError the TunnelServer writes with the
 * app's serializer: key order and `undefined` members are kept as Runner's
 * serializer would see them.
 */
function toProtocolError(store, error) {
  const extra = resolveAppErrorExtra(store, error);
  const status = extra?.httpCode ?? 500;
  const body = { message: displayMessage(error, extra), code: 'INTERNAL_ERROR' };
  if (extra && typeof extra === 'object') for (const [k, v] of Object.entries(extra)) body[k] = v;
  const { message, code, ...rest } = sanitizeError(status, body);
  return new ProtocolError(status, code, message, rest);
}

/** Runner's cancellation error for a client that closed the request (the abort reason). */
function clientClosedError() {
  try {
    return cancellationError.throw({ reason: 'Client Closed Request' });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

module.exports = { resolveAppErrorExtra, toProtocolError, clientClosedError };
