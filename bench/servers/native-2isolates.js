'use strict';
// The native server, share on, handlers in two isolates (the main thread and one worker thread).
require('./lib/isolates').serve(2);
