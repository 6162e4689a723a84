'use strict';
// Newline-delimited messages on a stream: how the harness, its server processes and its load
// generators talk (one JSON line or one command per line).

/** Calls `onLine(line)` for every complete line that arrives on `stream` (without the "\n"). */
function onLines(stream, onLine) {
  let buf = '';
  stream.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}

module.exports = { onLines };
