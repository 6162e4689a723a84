'use strict';
// Memory per idle keep-alive connection: on a fresh peer process (warmed with wrk, GC'd), the
// idle-connection client (idleconns.js) opens N connections and leaves them idle; the peer's
// VmRSS growth divided by the connections open.
const path = require('node:path');
const { TOKEN, TOKEN_HEADER, SCENARIO_KINDS, readRssKb, sleep } = require('../common');
const { runWrk } = require('../wrk');
const { runChild } = require('../child');
const { ServerProc } = require('../peers');

/** `bench`: the run (cfg, log, tmpDir, wrkBin, bodyFiles); `names`: the peers to measure. */
async function idleMemoryPhase(bench, names) {
  const { cfg, log, tmpDir, wrkBin, bodyFiles } = bench;
  const n = cfg.idleConns;
  log(`\nidle keep-alive memory: ${n} connections per server (fresh server process, warmed with wrk first)`);
  const out = {};
  for (const name of names) {
    const p = await new ServerProc(name, { logDir: tmpDir, log, verbose: cfg.verbose }).start({ exposeGc: true });
    if (p.state !== 'ready') {
      out[name] = { error: `${p.state}: ${p.reason}` };
      continue;
    }
    try {
      await runWrk({
        bin: wrkBin,
        url: `http://127.0.0.1:${p.port}${SCENARIO_KINDS.add.path}`,
        script: path.join(tmpDir, 'add.lua'),
        connections: 64,
        durationS: 1,
      });
      await sleep(500);
      await p.gc();
      await sleep(500);
      const rss0 = readRssKb(p.pid);
      let ready = null;
      let countMsg = null;
      const { child, exited } = runChild(
        'idleconns.js',
        {
          port: p.port,
          path: SCENARIO_KINDS.add.path,
          bodyFile: bodyFiles.add,
          count: n,
          concurrency: 50,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        },
        {
          onStdoutLine: (l) => {
            try {
              const m = JSON.parse(l);
              if (m.ready) ready = m;
              else if ('open' in m) countMsg = m;
            } catch {}
          },
        },
      );
      const deadline = Date.now() + 60000;
      while (!ready && Date.now() < deadline) await sleep(50);
      if (!ready) throw new Error('idle-connection client did not get ready in 60 s');
      await sleep(500);
      await p.gc();
      await sleep(500);
      const rss1 = readRssKb(p.pid);
      child.stdin.write('count\n');
      while (!countMsg && Date.now() < deadline) await sleep(20);
      child.stdin.end();
      await exited;
      const open = countMsg ? countMsg.open : ready.open;
      out[name] = {
        connections: open,
        failed: ready.failed,
        rssBeforeMiB: +(rss0 / 1024).toFixed(1),
        rssAfterMiB: +(rss1 / 1024).toFixed(1),
        bytesPerConnection: open > 0 ? Math.round(((rss1 - rss0) * 1024) / open) : null,
      };
      log(
        `   ${name.padEnd(15)} ${open}/${n} open  RSS ${out[name].rssBeforeMiB} → ${out[name].rssAfterMiB} MiB  ` +
          `≈ ${out[name].bytesPerConnection == null ? '-' : (out[name].bytesPerConnection / 1024).toFixed(1)} KiB/conn`,
      );
    } catch (e) {
      out[name] = { error: String(e.message || e) };
      log(`   ${name.padEnd(15)} ERROR ${e.message}`);
    }
    await p.stop();
  }
  return out;
}

module.exports = { idleMemoryPhase };
