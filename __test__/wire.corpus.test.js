'use strict';
// Wire-level differential suite, generated corpus: seeded mutations of valid requests (byte
// flips, inserted separators and whitespace, deleted bytes, duplicated header lines, changed
// digits, split points) sent to this server, Node's `http` server and a hyper server. For each,
// this server must not run what neither peer ran, nor split the bytes into requests differently
// from both, and must not leave the client hanging.
//
// WIRE_CORPUS_SEED replays a run (the seed is printed); WIRE_CORPUS_COUNT sets its size.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startWirePeers, checkRan, summary } = require('./helpers/wire');

const COUNT = Number(process.env.WIRE_CORPUS_COUNT) || 10_000;
const SEED = Number(process.env.WIRE_CORPUS_SEED) || Math.floor(Math.random() * 2 ** 31);
const LANES = 16;

/** mulberry32: a small seedable generator. */
function generator(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const below = (n) => Math.floor(next() * n);
  return { next, below, pick: (list) => list[below(list.length)] };
}

const HOST = 'Host: x\r\n';
const json = (id, body) =>
  `POST /__runner/task/${id} HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const raw = (id, body) =>
  `POST /__runner/task/${id} HTTP/1.1\r\n${HOST}Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const chunked = (id, chunks, { ext = '', trailers = '' } = {}) =>
  `POST /__runner/task/${id} HTTP/1.1\r\n${HOST}Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n` +
  chunks.map((c) => `${c.length.toString(16)}${ext}\r\n${c}\r\n`).join('') +
  `0\r\n${trailers}\r\n`;

/** Valid requests (and runs of them) that the mutations start from. */
const BASES = [
  json('a', '{"input":{"n":1}}') + json('b', '{"input":2}'),
  raw('a', 'hello') + raw('c', 'world!'),
  chunked('a', ['{"n":', '1}']) + json('b', '{}'),
  chunked('b', ['abc', 'defgh'], { ext: ';x=y', trailers: 'X-T: 1\r\n' }) + raw('d', 'tail'),
  `POST /__runner/task/a HTTP/1.1\r\n${HOST}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}` + raw('b', 'zz'),
  `POST /__runner/task/c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nnull` + json('d', '[1]'),
  raw('a', 'x') + chunked('b', ['1234567890']) + raw('c', 'y') + json('d', '3'),
  `POST /__runner/task/a HTTP/1.1\r\n${HOST}Content-Length: 0\r\n\r\n` + chunked('c', ['q'], { ext: ';a;b="c d"' }),
];

const INSERTS = [
  ' ',
  '\t',
  '\r',
  '\n',
  '\r\n',
  '\r\n\r\n',
  ',',
  ';',
  ':',
  '=',
  '"',
  '\\',
  '\0',
  '\x0b',
  '\x0c',
  '\x7f',
  '\xff',
  '\xc2\xa0',
  '\xe3\x80\x80',
  '\xc2\x85',
  '0',
  '1',
  'f',
  'chunked',
  ', chunked',
  'Content-Length: 3\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Connection: close\r\n',
  ' HTTP/1.1',
  'POST /__runner/task/d HTTP/1.1\r\n',
];

function mutate(rng, base) {
  let s = base;
  const n = 1 + rng.below(4);
  for (let i = 0; i < n; i++) {
    const at = rng.below(s.length + 1);
    switch (rng.below(6)) {
      case 0: {
        // Flip one bit of one byte.
        const p = Math.min(at, s.length - 1);
        s = s.slice(0, p) + String.fromCharCode(s.charCodeAt(p) ^ (1 << rng.below(8))) + s.slice(p + 1);
        break;
      }
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + rng.below(3));
        break;
      case 2: {
        // Duplicate the line `at` falls in.
        const start = s.lastIndexOf('\n', at - 1) + 1;
        const endAt = s.indexOf('\n', at);
        const end = endAt < 0 ? s.length : endAt + 1;
        s = s.slice(0, end) + s.slice(start, end) + s.slice(end);
        break;
      }
      case 3: {
        // Change a digit (a length or a chunk size).
        const digits = [...s.matchAll(/[0-9a-f]/g)];
        if (digits.length) {
          const d = rng.pick(digits);
          s = s.slice(0, d.index) + rng.pick(['0', '1', '2', '9', 'a', 'f', '00', '10']) + s.slice(d.index + 1);
        }
        break;
      }
      default:
        s = s.slice(0, at) + rng.pick(INSERTS) + s.slice(at);
    }
  }
  return Buffer.from(s, 'latin1');
}

/** Cuts the bytes into up to four writes, so the server reads them apart. */
function split(rng, bytes) {
  if (rng.below(3) !== 0) return [bytes];
  const cuts = [
    ...new Set(Array.from({ length: 1 + rng.below(3) }, () => 1 + rng.below(Math.max(1, bytes.length - 1)))),
  ].sort((x, y) => x - y);
  const parts = [];
  let from = 0;
  for (const cut of cuts) {
    if (cut > from && cut < bytes.length) {
      parts.push(bytes.subarray(from, cut));
      from = cut;
    }
  }
  parts.push(bytes.subarray(from));
  return parts;
}

describe('wire: generated corpus against Node and hyper', () => {
  let peers;
  before(async () => {
    peers = await startWirePeers({ lanes: LANES });
  });
  after(async () => {
    await peers?.close();
  });

  it(`${COUNT} mutated requests (WIRE_CORPUS_SEED=${SEED})`, async (t) => {
    t.diagnostic(`WIRE_CORPUS_SEED=${SEED} WIRE_CORPUS_COUNT=${COUNT}`);
    const rng = generator(SEED);
    const inputs = Array.from({ length: COUNT }, () => {
      const bytes = mutate(rng, rng.pick(BASES));
      return { bytes, parts: split(rng, bytes), halfClose: rng.below(8) === 0 ? 'ours' : false };
    });
    const failures = [];
    let next = 0;
    const worker = async () => {
      while (next < inputs.length) {
        const index = next++;
        const input = inputs[index];
        const result = await peers.run(input.parts, { halfClose: input.halfClose, quietMs: 40 });
        const why = !checkRan(result)
          ? 'ran what neither peer ran, or split differently from both'
          : result.ours.end === 'hung'
            ? 'left the client hanging'
            : null;
        if (why)
          failures.push(
            `#${index} ${why}: ${JSON.stringify(input.bytes.toString('latin1'))} in ${input.parts.length} part(s)${input.halfClose ? ', half-closed at once' : ''}\n${summary(result)}`,
          );
      }
    };
    await Promise.all(Array.from({ length: LANES }, worker));
    assert.equal(
      failures.length,
      0,
      `WIRE_CORPUS_SEED=${SEED}: ${failures.length} of ${COUNT} failed; first:\n${failures.slice(0, 5).join('\n\n')}`,
    );
  });
});
