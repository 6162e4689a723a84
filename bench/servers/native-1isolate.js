'use strict';
// The native server, share on, handlers in one isolate (the main thread).
require('./lib/isolates').serve(1);
