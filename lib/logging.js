'use strict';

// What the server logs: handler failures and auth refusals. A failing logger
// must not take the server down, so each call swallows what it throws.

const errorMessage = (e) => (e instanceof Error ? e.message : String(e));

/** `[runner-native] {where} {id} failed: {message}`, with the error, on `logger.error`. */
function logError(logger, where, id, err) {
  try {
    const message = errorMessage(err);
    logger.error(`[runner-native] ${where}${id ? ` ${id}` : ''} failed: ${message}`, err);
  } catch {
    // A failing logger must not take the server down.
  }
}

/** A refused request, logged as the reference does (`exposure.auth.failure`). */
function logAuthFailure(logger, record) {
  try {
    if (typeof logger.warn === 'function') logger.warn('exposure.auth.failure', record);
  } catch {
    // A failing logger must not take the server down.
  }
}

module.exports = { errorMessage, logError, logAuthFailure };
