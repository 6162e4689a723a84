'use strict';
// Wire-level differential suite, hand-written cases (helpers/wire-cases.js): the same raw bytes
// to this server, to Node's `http` server and to a plain hyper server. This server must never run
// a request that both peers refuse or do not run, nor split the bytes into requests differently
// from both; every refusal it makes must be the one Node makes (same status), except where a case
// says why not (README, "Differences"); and it must never leave the client hanging.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startWirePeers, checkRan, refusalOf, summary } = require('./helpers/wire');
const { cases, DIFFERENCES } = require('./helpers/wire-cases');

describe('wire: hand-written cases against Node and hyper', { concurrency: 6 }, () => {
  let peers;
  before(async () => {
    peers = await startWirePeers({ lanes: 6 });
  });
  after(async () => {
    await peers?.close();
  });

  it('has at least 150 cases, and every listed difference names one', () => {
    assert.ok(cases.length >= 150, `${cases.length} cases`);
    const names = new Set(cases.map((c) => c.name));
    for (const name of Object.keys(DIFFERENCES)) assert.ok(names.has(name), `no case named ${JSON.stringify(name)}`);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const result = await peers.run(c.parts, { halfClose: c.halfClose, quietMs: 100 });
      const report = `\n${summary(result)}`;
      assert.ok(checkRan(result), `ran what neither peer ran, or split differently from both:${report}`);
      assert.notEqual(result.ours.end, 'hung', `left the client hanging:${report}`);
      if (c.differs) {
        // A documented difference from Node: it must still be one (or the note is stale).
        assert.notEqual(
          refusalOf(result.ours),
          refusalOf(result.node),
          `no longer differs from Node (${c.differs}):${report}`,
        );
      } else {
        assert.equal(refusalOf(result.ours), refusalOf(result.node), `refused otherwise than Node:${report}`);
      }
    });
  }
});
