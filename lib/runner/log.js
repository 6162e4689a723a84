'use strict';

// Calls on the app's Runner logger from nativeExposure.

/** Calls a Runner logger method; it may throw or return a rejecting promise. */
function safeLog(logger, level, message, data) {
  try {
    const out = logger[level](message, data);
    if (out && typeof out.catch === 'function') out.catch(() => {});
  } catch {
    // A failing logger must not fail the request.
  }
}

module.exports = { safeLog };
