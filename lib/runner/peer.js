'use strict';

// `@bluelibs/runner`, the peer dependency nativeExposure is built on, or a
// clear error saying how to install it.

let runner;
try {
  runner = require('@bluelibs/runner');
} catch (err) {
  const e = new Error(
    "@bluelibs/runner-native/runner needs the peer dependency '@bluelibs/runner' (^5.5.0): npm install @bluelibs/runner",
  );
  e.code = 'MODULE_NOT_FOUND';
  e.cause = err;
  throw e;
}

module.exports = runner;
