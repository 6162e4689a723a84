'use strict';
// Hand-written cases for the wire-level differential suite, drawn from the request-smuggling
// literature: CL.TE, TE.CL, TE.TE obfuscations, every Content-Length and chunk-size form, chunk
// extensions, trailers, line endings, header syntax, request lines and versions, pipelining,
// half-close and Expect.
//
// A case: { name, parts: [Buffer|string, ...] (written apart), halfClose?: true (the client
// ends its side right after sending), differs?: 'why this server answers otherwise than Node' }.
// Strings are sent as latin1 (one byte per char); `u8(...)` gives UTF-8 bytes.

const u8 = (text) => Buffer.from(text, 'utf8');
const HOST = 'Host: x\r\n';
const task = (id = 'a') => `/__runner/task/${id}`;

/** A POST to task `id` with the given header lines (each without CRLF) and raw body. */
function post(id, lines, body = '') {
  return `POST ${task(id)} HTTP/1.1\r\n${HOST}${lines.map((l) => `${l}\r\n`).join('')}\r\n${body}`;
}
/** A well-formed request to task `b`, placed after a case to see whether it is run. */
const NEXT = post('b', ['Content-Length: 7', 'Content-Type: application/json'], '{"n":2}');
const chunked = (body) => post('a', ['Transfer-Encoding: chunked'], body);

const cases = [];
const add = (family, name, parts, extra = {}) =>
  cases.push({ name: `${family}: ${name}`, parts: [].concat(parts), ...extra });

// ---- Content-Length forms -----------------------------------------------------------------
for (const [label, value] of [
  ['plain', '2'],
  ['leading zeros', '0002'],
  ['spaces around', '  2  '],
  ['tabs around', '\t2\t'],
  ['zero with body', '0'],
]) {
  add('content-length', `valid ${label}`, post('a', [`Content-Length: ${value}`], '{}') + NEXT);
}
for (const [label, value] of [
  ['empty', ''],
  ['plus sign', '+2'],
  ['minus sign', '-2'],
  ['decimal', '2.0'],
  ['exponent', '2e0'],
  ['hex', '0x2'],
  ['list of equal values', '2,2'],
  ['list with space', '2, 2'],
  ['list of different values', '2, 3'],
  ['two numbers', '2 2'],
  ['vertical tab', '2\x0b'],
  ['form feed', '\x0c2'],
  ['NUL after', '2\x00'],
  ['letters', 'two'],
  ['overflow u64', '18446744073709551616'],
  ['far past u64', '99999999999999999999999'],
  ['quoted', '"2"'],
  ['semicolon', '2;'],
]) {
  add('content-length', `invalid ${label}`, post('a', [`Content-Length: ${value}`], '{}') + NEXT);
}
for (const [label, ch] of [
  ['U+00A0 no-break space', '\u00a0'],
  ['U+0085 next line', '\u0085'],
  ['U+3000 ideographic space', '\u3000'],
  ['U+2028 line separator', '\u2028'],
  ['U+FEFF byte order mark', '\ufeff'],
  ['U+2003 em space', '\u2003'],
]) {
  add('content-length', `non-ASCII whitespace before: ${label}`, [
    u8(post('a', [`Content-Length: ${ch}2`], '{}')),
    NEXT,
  ]);
  add('content-length', `non-ASCII whitespace after: ${label}`, [
    u8(post('a', [`Content-Length: 2${ch}`], '{}')),
    NEXT,
  ]);
}
add('content-length', 'two equal headers', post('a', ['Content-Length: 2', 'Content-Length: 2'], '{}') + NEXT);
add(
  'content-length',
  'two different headers (CL.CL)',
  post('a', ['Content-Length: 2', 'Content-Length: 40'], '{}') + NEXT,
);
add('content-length', 'no space after colon', post('a', ['Content-Length:2'], '{}') + NEXT);
add('content-length', 'upper-case name', post('a', ['CONTENT-LENGTH: 2'], '{}') + NEXT);
add('content-length', 'underscore name is just another header', post('a', ['Content_Length: 7'], '{"n":1}') + NEXT);
add('content-length', 'space before the colon', post('a', ['Content-Length : 2'], '{}') + NEXT);
add('content-length', 'body shorter than declared, then half-close', post('a', ['Content-Length: 50'], '{}'), {
  halfClose: true,
});
add('content-length', 'GET with a body', `GET ${task('a')} HTTP/1.1\r\n${HOST}Content-Length: 2\r\n\r\n{}${NEXT}`);

// ---- Transfer-Encoding forms (TE.TE obfuscations among them) --------------------------------
const BODY = '7\r\n{"n":1}\r\n0\r\n\r\n';
for (const [label, value] of [
  ['chunked', 'chunked'],
  ['Chunked', 'Chunked'],
  ['CHUNKED', 'CHUNKED'],
  ['leading space', '  chunked'],
  ['trailing space', 'chunked  '],
  ['tab before', '\tchunked'],
  ['gzip, chunked', 'gzip, chunked'],
  ['gzip,chunked', 'gzip,chunked'],
  ['identity, chunked', 'identity, chunked'],
  ['coding with parameter, chunked', 'x;a=1, chunked'],
  ['empty elements', ', gzip, , chunked'],
]) {
  add('transfer-encoding', `valid ${label}`, post('a', [`Transfer-Encoding: ${value}`], BODY) + NEXT);
}
for (const [label, value] of [
  ['chunked, gzip', 'chunked, gzip'],
  ['chunked twice in one list', 'chunked, chunked'],
  ['identity', 'identity'],
  ['xchunked', 'xchunked'],
  ['chunkedx', 'chunkedx'],
  ['chunk', 'chunk'],
  ['chunked with a parameter', 'chunked;q=1'],
  ['vertical tab after', 'chunked\x0b'],
  ['form feed before', '\x0cchunked'],
  ['NUL after', 'chunked\x00'],
  ['quoted', '"chunked"'],
  ['empty', ''],
  ['comma only', ','],
  ['comma after chunked', 'chunked,'],
]) {
  add('transfer-encoding', `invalid ${label}`, post('a', [`Transfer-Encoding: ${value}`], BODY) + NEXT);
}
add('transfer-encoding', 'non-ASCII space before chunked', [
  u8(post('a', ['Transfer-Encoding: \u00a0chunked'], BODY)),
  NEXT,
]);
add(
  'transfer-encoding',
  'two headers: chunked then gzip',
  post('a', ['Transfer-Encoding: chunked', 'Transfer-Encoding: gzip'], BODY) + NEXT,
);
add(
  'transfer-encoding',
  'two headers: gzip then chunked',
  post('a', ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'], BODY) + NEXT,
);
add(
  'transfer-encoding',
  'two headers: chunked twice',
  post('a', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], BODY) + NEXT,
);
add(
  'transfer-encoding',
  'two headers: chunked then x',
  post('a', ['Transfer-Encoding: chunked', 'Transfer-Encoding: x'], BODY) + NEXT,
);
add('transfer-encoding', 'space before the colon', post('a', ['Transfer-Encoding : chunked'], BODY) + NEXT);
add('transfer-encoding', 'underscore name', post('a', ['Transfer_Encoding: chunked'], BODY) + NEXT);
add('transfer-encoding', 'value folded onto the next line', post('a', ['Transfer-Encoding:', ' chunked'], BODY) + NEXT);
add('transfer-encoding', 'header line starting with a space', post('a', [' Transfer-Encoding: chunked'], BODY) + NEXT);
add('transfer-encoding', 'hidden behind a bare LF', post('a', ['X: y\nTransfer-Encoding: chunked'], BODY) + NEXT);
add('transfer-encoding', 'name then LF then colon', post('a', ['Transfer-Encoding\n: chunked'], BODY) + NEXT);
add('transfer-encoding', 'HTTP/1.0 request', `POST ${task('a')} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n${BODY}`);

// ---- CL.TE and TE.CL ----------------------------------------------------------------------
add('cl.te', 'CL then TE', post('a', ['Content-Length: 6', 'Transfer-Encoding: chunked'], `0\r\n\r\nG${NEXT}`));
add(
  'cl.te',
  'TE then CL',
  post('a', ['Transfer-Encoding: chunked', 'Content-Length: 4'], `5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n${NEXT}`),
);
add(
  'cl.te',
  'CL with obfuscated TE',
  post('a', ['Content-Length: 13', 'Transfer-Encoding: xchunked'], `0\r\n\r\nSMUGGLED${NEXT}`),
);
add('cl.te', 'TE with CL 0', post('a', ['Transfer-Encoding: chunked', 'Content-Length: 0'], BODY + NEXT));
add(
  'cl.te',
  'TE in HTTP/1.0 with CL',
  `POST ${task('a')} HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${NEXT}`,
);
add(
  'te.cl',
  'TE obfuscated by a trailing tab, with CL',
  post('a', ['Content-Length: 3', 'Transfer-Encoding: chunked\t'], `8\r\nSMUGGLED\r\n0\r\n\r\n${NEXT}`),
);
add(
  'te.cl',
  'TE obfuscated by case and space, with CL',
  post('a', ['Content-Length: 4', 'transfer-encoding:  CHUNKED '], `5c\r\nGPOST\r\n0\r\n\r\n`),
);
add('cl.0', 'CL 0 then a second request in the body position', post('a', ['Content-Length: 0'], NEXT));

// ---- chunk sizes --------------------------------------------------------------------------
for (const [label, body] of [
  ['one chunk', '2\r\n{}\r\n0\r\n\r\n'],
  ['leading zeros', '0002\r\n{}\r\n000\r\n\r\n'],
  ['sixty-three leading zeros', `${'0'.repeat(63)}2\r\n{}\r\n0\r\n\r\n`],
  ['upper-case hex', '7\r\n{"n":1}\r\n0\r\n\r\n'],
  ['several chunks', '1\r\n{\r\n1\r\n}\r\n0\r\n\r\n'],
  ['hex letters', 'A\r\n{"n":123}\r\n0\r\n\r\n'],
]) {
  add('chunk-size', `valid ${label}`, chunked(body) + NEXT);
}
for (const [label, body] of [
  ['junk after a space', '2 xyz\r\n{}\r\n0\r\n\r\n'],
  ['two numbers', '2 2\r\n{}\r\n0\r\n\r\n'],
  ['vertical tab after', '2\x0b\r\n{}\r\n0\r\n\r\n'],
  ['leading space', ' 2\r\n{}\r\n0\r\n\r\n'],
  ['minus sign', '-2\r\n{}\r\n0\r\n\r\n'],
  ['plus sign', '+2\r\n{}\r\n0\r\n\r\n'],
  ['0x prefix', '0x2\r\n{}\r\n0\r\n\r\n'],
  ['not hex', 'zz\r\n{}\r\n0\r\n\r\n'],
  ['empty size line', '\r\n{}\r\n0\r\n\r\n'],
  ['overflow u64', '10000000000000000\r\n{}\r\n0\r\n\r\n'],
  ['far past u64', 'fffffffffffffffffff\r\n{}\r\n0\r\n\r\n'],
  ['bare LF after size', '2\n{}\r\n0\r\n\r\n'],
  ['bare CR after size', '2\r{}\r\n0\r\n\r\n'],
  ['CR CR LF after size', '2\r\r\n{}\r\n0\r\n\r\n'],
  ['data longer than size', '2\r\n{}}\r\n0\r\n\r\n'],
  ['data shorter than size', '3\r\n{}\r\n0\r\n\r\n'],
  ['missing CRLF after data', '2\r\n{}XX0\r\n\r\n'],
  ['bare LF after data', '2\r\n{}\n0\r\n\r\n'],
  ['bare CR after data', '2\r\n{}\r0\r\n\r\n'],
  ['non-ASCII space after size', '2\u00a0\r\n{}\r\n0\r\n\r\n'],
  ['NUL after size', '2\x00\r\n{}\r\n0\r\n\r\n'],
  ['last chunk without final CRLF, half-closed', '2\r\n{}\r\n0\r\n'],
]) {
  add('chunk-size', `invalid ${label}`, chunked(body) + NEXT);
}
add('chunk-size', 'huge size, then half-close mid-data', chunked('ffffffff\r\n{}'), { halfClose: true });
add('chunk-size', 'whitespace after the size before CRLF', chunked('2 \r\n{}\r\n0\r\n\r\n') + NEXT, {
  differs:
    'whitespace after a chunk size is accepted as hyper and Go accept it (some senders pad sizes); llhttp refuses it',
});
add('chunk-size', 'tab after the size', chunked('2\t\r\n{}\r\n0\r\n\r\n') + NEXT, {
  differs:
    'whitespace after a chunk size is accepted as hyper and Go accept it (some senders pad sizes); llhttp refuses it',
});

// ---- chunk extensions ---------------------------------------------------------------------
for (const [label, ext] of [
  ['name only', ';a'],
  ['name=token', ';a=b'],
  ['quoted value', ';a="b c"'],
  ['quoted value with an escape', ';a="b\\"c"'],
  ['empty quoted value', ';a=""'],
  ['two extensions', ';a=b;c=d'],
  ['8 KiB extension', `;a=${'b'.repeat(8 * 1024)}`],
]) {
  add('chunk-ext', `valid ${label}`, chunked(`2${ext}\r\n{}\r\n0\r\n\r\n`) + NEXT);
}
for (const [label, ext] of [
  ['semicolon only', ';'],
  ['no name', ';=b'],
  ['no value', ';a='],
  ['space inside the name', ';a b'],
  ['space inside a token value', ';a=b c'],
  ['two equals signs', ';a==b'],
  ['unterminated quote', ';a="b'],
  ['control char in quotes', ';a="\x01"'],
  ['junk after the quotes', ';a="b"c'],
  ['bare LF ends the line', ';a=b\n'],
  ['NUL in the name', ';a\x00'],
  ['non-ASCII in a token', ';a=\xe9'],
]) {
  add('chunk-ext', `invalid ${label}`, chunked(`2${ext}\r\n{}\r\n0\r\n\r\n`) + NEXT);
}
add('chunk-ext', 'space before the semicolon', chunked('2 ;a=b\r\n{}\r\n0\r\n\r\n') + NEXT, {
  differs: 'RFC 9112 allows whitespace before ";" (BWS) and hyper accepts it; llhttp refuses it',
});
add('chunk-ext', 'whitespace around the equals sign', chunked('2;a = b\r\n{}\r\n0\r\n\r\n') + NEXT, {
  differs: 'RFC 9112 allows whitespace around "=" (BWS) and hyper accepts it; llhttp refuses it',
});
add(
  'chunk-ext',
  'more than 16 KiB of extensions in one line',
  chunked(`2;a=${'b'.repeat(20 * 1024)}\r\n{}\r\n0\r\n\r\n`) + NEXT,
);
add(
  'chunk-ext',
  'more than 16 KiB of extensions across chunks',
  chunked(`${`1;a=${'b'.repeat(2000)}\r\nx\r\n`.repeat(9)}0\r\n\r\n`) + NEXT,
);
add('chunk-ext', 'extension on the last chunk', chunked('2\r\n{}\r\n0;last=1\r\n\r\n') + NEXT);

// ---- trailers -----------------------------------------------------------------------------
for (const [label, trailers] of [
  ['one field', 'X-T: 1\r\n'],
  ['two fields', 'X-T: 1\r\nX-U: 2\r\n'],
  ['empty value', 'X-T:\r\n'],
]) {
  add('trailers', `valid ${label}`, chunked(`2\r\n{}\r\n0\r\n${trailers}\r\n`) + NEXT);
}
for (const [label, trailers] of [
  ['a content-length trailer', 'Content-Length: 50\r\n'],
  ['a transfer-encoding trailer', 'Transfer-Encoding: chunked\r\n'],
  ['line without a colon', 'foo\r\n'],
  ['line ending in a bare LF', 'X-T: 1\n'],
  ['section ending in a bare LF', 'X-T: 1\r\n\n'],
  ['obs-fold', 'X-T: 1\r\n 2\r\n'],
  ['space before the colon', 'X-T : 1\r\n'],
  ['empty name', ': 1\r\n'],
  ['NUL in the value', 'X-T: \x00\r\n'],
  ['bare CR', 'X-T: 1\r\r\n'],
  ['a request line as a trailer', `POST ${task('c')} HTTP/1.1\r\n`],
]) {
  add('trailers', `invalid ${label}`, chunked(`2\r\n{}\r\n0\r\n${trailers}\r\n`) + NEXT);
}
add(
  'trailers',
  'more than 16 KiB of trailers',
  chunked(`2\r\n{}\r\n0\r\n${'X-T: 1234567890\r\n'.repeat(1100)}\r\n`) + NEXT,
);
add('trailers', 'body ends with a bare LF instead of the final CRLF', chunked('2\r\n{}\r\n0\r\n\n') + NEXT);

// ---- line endings -------------------------------------------------------------------------
add(
  'line-endings',
  'bare LF after the request line',
  `POST ${task('a')} HTTP/1.1\n${HOST}Content-Length: 2\r\n\r\n{}${NEXT}`,
);
add(
  'line-endings',
  'bare LF after a header',
  `POST ${task('a')} HTTP/1.1\r\nHost: x\nContent-Length: 2\r\n\r\n{}${NEXT}`,
);
add('line-endings', 'bare LF ends the head', `POST ${task('a')} HTTP/1.1\r\n${HOST}Content-Length: 2\r\n\n{}${NEXT}`);
add('line-endings', 'only bare LFs', `POST ${task('a')} HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}${NEXT}`);
add(
  'line-endings',
  'bare CR inside a header',
  `POST ${task('a')} HTTP/1.1\r\nHost: x\rContent-Length: 2\r\n\r\n{}${NEXT}`,
);
add('line-endings', 'CR CR LF', `POST ${task('a')} HTTP/1.1\r\r\n${HOST}Content-Length: 2\r\n\r\n{}${NEXT}`);
add('line-endings', 'leading CRLF before the request', `\r\n${post('a', ['Content-Length: 2'], '{}')}${NEXT}`);
add('line-endings', 'leading LF before the request', `\n${post('a', ['Content-Length: 2'], '{}')}${NEXT}`);
add('line-endings', 'several empty lines between requests', `${post('a', ['Content-Length: 2'], '{}')}\r\n\r\n${NEXT}`);
add('line-endings', 'leading space before the method', ` ${post('a', ['Content-Length: 2'], '{}')}${NEXT}`);
add('line-endings', 'LF CR instead of CRLF', `POST ${task('a')} HTTP/1.1\n\r${HOST}Content-Length: 2\r\n\r\n{}`);

// ---- header syntax ------------------------------------------------------------------------
for (const [label, line] of [
  ['tab before the colon', 'X-A\t: 1'],
  ['empty name', ': 1'],
  ['name with a parenthesis', 'X(A): 1'],
  ['name with a slash', 'X/A: 1'],
  ['non-ASCII name', 'X\xe9: 1'],
  ['NUL in a value', 'X-A: a\x00b'],
  ['DEL in a value', 'X-A: a\x7fb'],
  ['vertical tab in a value', 'X-A: a\x0bb'],
  ['no colon at all', 'X-A 1'],
  ['line of spaces', '   '],
]) {
  add('header-syntax', label, post('a', [line, 'Content-Length: 2'], '{}') + NEXT);
}
add('header-syntax', 'obs-text in a value', post('a', ['X-A: caf\xe9', 'Content-Length: 2'], '{}') + NEXT);
add('header-syntax', 'tab inside a value', post('a', ['X-A: a\tb', 'Content-Length: 2'], '{}') + NEXT);
add('header-syntax', 'obs-fold continuation', post('a', ['X-A: 1', '\t2', 'Content-Length: 2'], '{}') + NEXT);
add(
  'header-syntax',
  '300 header lines',
  post('a', [...Array.from({ length: 300 }, (_, i) => `X-${i}: v`), 'Content-Length: 2'], '{}') + NEXT,
);
add(
  'header-syntax',
  'head over 16 KiB',
  post('a', [`X-A: ${'v'.repeat(17 * 1024)}`, 'Content-Length: 2'], '{}') + NEXT,
);
add(
  'header-syntax',
  'head just under 16 KiB',
  post('a', [`X-A: ${'v'.repeat(15 * 1024)}`, 'Content-Length: 2'], '{}') + NEXT,
);
add('header-syntax', 'no Host in HTTP/1.1', `POST ${task('a')} HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}${NEXT}`);
add('header-syntax', 'two Host headers', post('a', ['Host: y', 'Content-Length: 2'], '{}') + NEXT);
add('header-syntax', 'empty Host', `POST ${task('a')} HTTP/1.1\r\nHost:\r\nContent-Length: 2\r\n\r\n{}${NEXT}`);
add('header-syntax', 'no Host in HTTP/1.0', `POST ${task('a')} HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}`);
add(
  'header-syntax',
  'upper-case Connection: CLOSE',
  post('a', ['Connection: CLOSE', 'Content-Length: 2'], '{}') + NEXT,
);

// ---- request line and versions ------------------------------------------------------------
const line = (text) => `${text}\r\n${HOST}Content-Length: 2\r\n\r\n{}${NEXT}`;
for (const [label, text] of [
  ['unknown method', `FOO ${task('a')} HTTP/1.1`],
  ['lower-case method', `post ${task('a')} HTTP/1.1`],
  ['method with a space', `PO ST ${task('a')} HTTP/1.1`],
  ['two spaces after the method', `POST  ${task('a')} HTTP/1.1`],
  ['two spaces before the version', `POST ${task('a')}  HTTP/1.1`],
  ['tab as separator', `POST\t${task('a')} HTTP/1.1`],
  ['missing version', `POST ${task('a')}`],
  ['HTTP/1.2', `POST ${task('a')} HTTP/1.2`],
  ['HTTP/2.0', `POST ${task('a')} HTTP/2.0`],
  ['HTTP/0.9', `POST ${task('a')} HTTP/0.9`],
  ['HTTP/1.10', `POST ${task('a')} HTTP/1.10`],
  ['lower-case http', `POST ${task('a')} http/1.1`],
  ['junk after the version', `POST ${task('a')} HTTP/1.1 x`],
  ['space after the version', `POST ${task('a')} HTTP/1.1 `],
  ['space inside the target', `POST /__runner/task/ a HTTP/1.1`],
  ['non-ASCII target', `POST /__runner/task/\xe9 HTTP/1.1`],
  ['NUL in the target', `POST /__runner/task/a\x00 HTTP/1.1`],
  ['empty target', `POST  HTTP/1.1`],
  ['PRI method (h2 preface)', `PRI * HTTP/2.0`],
]) {
  add('request-line', label, line(text));
}
add('request-line', 'absolute-form target', line(`POST http://x${task('a')} HTTP/1.1`));
for (const ch of ['<', '>', '`'])
  add('request-line', `raw ${ch} in the target`, line(`POST ${task('a')}${ch}b HTTP/1.1`));
for (const ch of ['"', '{', '|', '^', '%zz'])
  add('request-line', `raw ${ch} in the target (a protocol 404)`, line(`POST ${task('a')}${ch}b HTTP/1.1`));
add('request-line', 'target with a query', line(`POST ${task('a')}?q=1 HTTP/1.1`));
add('request-line', 'target with a fragment', line(`POST ${task('a')}#f HTTP/1.1`));
add('request-line', 'CONNECT', `CONNECT x:443 HTTP/1.1\r\n${HOST}\r\n`);
add('request-line', 'OPTIONS *', `OPTIONS * HTTP/1.1\r\n${HOST}\r\n\r\n`);
add(
  'request-line',
  'HTTP/1.0 keep-alive then a second request',
  `POST ${task('a')} HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}${NEXT}`,
);
add(
  'request-line',
  'HTTP/1.0 without keep-alive then a second request',
  `POST ${task('a')} HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}${NEXT}`,
);

// ---- pipelining ---------------------------------------------------------------------------
add('pipelining', 'two requests in one write', post('a', ['Content-Length: 2'], '{}') + NEXT);
add(
  'pipelining',
  'three requests, chunked in the middle',
  post('a', ['Content-Length: 2'], '{}') + chunked('2\r\n{}\r\n0\r\n\r\n') + NEXT,
);
add('pipelining', 'a good request then garbage', post('a', ['Content-Length: 2'], '{}') + 'GARBAGE\r\n\r\n');
add(
  'pipelining',
  'a good request then a broken chunked one then a good one',
  post('a', ['Content-Length: 2'], '{}') + chunked('2 x\r\n{}\r\n0\r\n\r\n') + NEXT,
);
add('pipelining', 'requests split across writes mid-head', [
  post('a', ['Content-Length: 2'], '{}') + 'POST /__run',
  `ner/task/b HTTP/1.1\r\n${HOST}Content-Length: 2\r\n\r\n{}`,
]);
add('pipelining', 'requests split across writes mid-chunk', [chunked('7\r\n{"n"'), ':1}\r\n0\r\n', `\r\n${NEXT}`]);
add('pipelining', 'split between CR and LF', [
  `POST ${task('a')} HTTP/1.1\r`,
  `\n${HOST}Content-Length: 2\r\n\r`,
  `\n{}${NEXT}`,
]);
add(
  'pipelining',
  'every byte written apart',
  [...Buffer.from(post('a', ['Transfer-Encoding: chunked'], '2;a=b\r\n{}\r\n0\r\nX: 1\r\n\r\n'), 'latin1')].map((b) =>
    Buffer.from([b]),
  ),
);
add(
  'pipelining',
  'Connection: close, then a request it hides',
  post('a', ['Connection: close', 'Content-Length: 2'], '{}') + NEXT,
);
add(
  'pipelining',
  'ten small requests',
  Array.from({ length: 10 }, (_, i) => post('abcd'[i % 4], ['Content-Length: 2'], '{}')).join(''),
);

// ---- half-close ---------------------------------------------------------------------------
add('half-close', 'in the request line', `POST ${task('a')} HT`, { halfClose: true });
add('half-close', 'in the head', `POST ${task('a')} HTTP/1.1\r\n${HOST}`, { halfClose: true });
add('half-close', 'in a Content-Length body', post('a', ['Content-Length: 10'], '{"n'), { halfClose: true });
add('half-close', 'in a chunk size', chunked('2'), { halfClose: true });
add('half-close', 'in chunk data', chunked('7\r\n{"n'), { halfClose: true });
add('half-close', 'in the trailers', chunked('2\r\n{}\r\n0\r\nX-T: 1\r\n'), { halfClose: true });
add('half-close', 'between requests', post('a', ['Content-Length: 2'], '{}'), { halfClose: true });
add('half-close', 'after empty lines only', '\r\n\r\n', { halfClose: true });

// ---- Expect -------------------------------------------------------------------------------
add('expect', '100-continue', post('a', ['Expect: 100-continue', 'Content-Length: 2'], '{}') + NEXT);
add('expect', '100-Continue in mixed case', post('a', ['Expect: 100-Continue', 'Content-Length: 2'], '{}') + NEXT);
add('expect', '100-continue, body sent after the interim answer', [
  post('a', ['Expect: 100-continue', 'Content-Length: 2']),
  '{}',
]);
add(
  'expect',
  '100-continue on a chunked body',
  post('a', ['Expect: 100-continue', 'Transfer-Encoding: chunked'], '2\r\n{}\r\n0\r\n\r\n') + NEXT,
);
add(
  'expect',
  '100-continue in HTTP/1.0',
  `POST ${task('a')} HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}`,
);

// Where this server refuses otherwise than Node, and why (the README's "Differences" lists
// these). The suite checks each is still a difference, so the list cannot go stale.
const AFTER_CLOSE =
  "Node's parser answers 400 to bytes after a request that closes the connection; this server answers that request and closes, running neither";
const URI_CHARS =
  'raw <, > and ` in a request target are outside the URI grammar and refused with 400, as hyper refuses them; llhttp accepts them (clients percent-encode them)';
const DIFFERENCES = {
  'pipelining: Connection: close, then a request it hides': AFTER_CLOSE,
  'content-length: valid tabs around':
    'HTAB around a Content-Length value is optional whitespace (RFC 9110) and hyper accepts it; llhttp refuses a tab after the digits',
  'transfer-encoding: HTTP/1.0 request':
    'Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 6.1), refused as hyper refuses it; Node accepts it',
  'chunk-ext: invalid no name':
    'a chunk extension without a name is outside the RFC 9112 grammar; llhttp and hyper accept it',
  'chunk-ext: invalid no value':
    'a chunk extension with "=" but no value is outside the RFC 9112 grammar; llhttp and hyper accept it',
  'header-syntax: two Host headers': 'RFC 9112 3.2 requires a 400 for more than one Host; llhttp and hyper accept it',
  'header-syntax: upper-case Connection: CLOSE': AFTER_CLOSE,
  'request-line: HTTP/1.0 without keep-alive then a second request': AFTER_CLOSE,
  'request-line: two spaces after the method':
    'repeated spaces in the request line are refused, as hyper refuses them; llhttp accepts them',
  'request-line: two spaces before the version':
    'repeated spaces in the request line are refused, as hyper refuses them; llhttp accepts them',
  'request-line: raw < in the target': URI_CHARS,
  'request-line: raw > in the target': URI_CHARS,
  'request-line: raw ` in the target': URI_CHARS,
  'request-line: CONNECT':
    "Node's server closes a CONNECT without an answer (no 'connect' listener); this server answers 400 (the protocol has no tunnels)",
};
for (const c of cases) {
  if (DIFFERENCES[c.name]) c.differs = DIFFERENCES[c.name];
}

module.exports = { cases, DIFFERENCES };
