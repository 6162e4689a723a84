'use strict';
// The load generators' HTTP/1.1 over raw sockets: one pre-built POST, sent as is on every
// request (keeps the generator's own CPU cost small), and the check that an answer is complete.
const fs = require('node:fs');

const HEADER_END = Buffer.from('\r\n\r\n');

/** The bytes of `POST {path}` to 127.0.0.1:{port} with `headers` and the body read from `bodyFile`. */
function postRequestBytes({ port, path, bodyFile, headers }) {
  const body = fs.readFileSync(bodyFile);
  const headerLines = Object.entries(headers || {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.concat([
    Buffer.from(
      `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n${headerLines}content-length: ${body.length}\r\n\r\n`,
    ),
    body,
  ]);
}

/**
 * What the bytes received so far say of one answer: null while its head is incomplete, else
 * { status, head, complete } (complete: the body framed by content-length or chunked encoding has
 * arrived; an answer with neither ends with its head).
 */
function answerSoFar(buf) {
  const he = buf.indexOf(HEADER_END);
  if (he === -1) return null;
  const head = buf.toString('latin1', 0, he);
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  let complete;
  if (m) complete = buf.length >= he + 4 + Number(m[1]);
  else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) complete = buf.lastIndexOf('0\r\n\r\n') >= he + 4;
  else complete = true;
  return { status, head, complete };
}

module.exports = { postRequestBytes, answerSoFar };
