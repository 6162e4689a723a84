'use strict';
// Hand-written SVG grouped bar chart: requests/s per server, grouped by scenario.

const COLORS = {
  native: '#d1495b',
  nativeExposure: '#edae49',
  nodeExposure: '#00798c',
  'node-http': '#30638e',
  fastify: '#555555',
  brahma: '#8cb369',
  rust: '#6a4c93',
};
const FALLBACK = ['#e76f51', '#2a9d8f', '#264653', '#f4a261', '#9b5de5', '#00bbf9'];

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtK(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e5 ? 0 : 1) + 'k';
  return String(Math.round(v));
}

function fmtTick(v) {
  return fmtK(v).replace(/\.0(?=[kM]?$)/, '');
}

/**
 * Grouped bar chart in side-by-side panels, each with its own y scale (so the 16 KB echo
 * bars aren't dwarfed by the tiny-task ones).
 * @param {object} o
 * @param {{title:string, scenarios:string[]}[]} o.panels
 * @param {object}   o.labels      scenario name -> x label ("line1\nline2")
 * @param {string[]} o.servers     server names (bars in each group)
 * @param {(scenario, server) => {value:number, valid:boolean}|null} o.get
 * @param {string} o.title
 * @param {string} o.subtitle
 * @param {string} [o.yLabel]
 */
function barChart({ panels, labels = {}, servers, get, title, subtitle, yLabel = 'requests / s' }) {
  const bw = 14; // bar width
  const gap = 2;
  const groupPad = 22;
  const axisW = 46;
  const panelGap = 24;
  const left = 34;
  const right = 16;
  const top = 100;
  const plotH = 280;
  const bottom = 52;
  const groupW = servers.length * (bw + gap) - gap + groupPad;
  const panelW = (p) => axisW + p.scenarios.length * groupW;
  const width = Math.max(
    640,
    left + right + panels.reduce((a, p) => a + panelW(p), 0) + panelGap * (panels.length - 1),
  );
  const height = top + plotH + bottom;

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="600" fill="#222">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${left}" y="42" font-size="11" fill="#666">${esc(subtitle)}</text>`);

  // legend
  let lx = left;
  const ly = 64;
  servers.forEach((sv, i) => {
    const color = COLORS[sv] || FALLBACK[i % FALLBACK.length];
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" rx="2" fill="${color}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly}" fill="#333">${esc(sv)}</text>`);
    lx += 16 + sv.length * 7 + 18;
  });
  out.push(
    `<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#555">${esc(yLabel)}</text>`,
  );

  let px = left;
  for (const panel of panels) {
    let max = 0;
    for (const sc of panel.scenarios)
      for (const sv of servers) {
        const r = get(sc, sv);
        if (r && r.value > max) max = r.value;
      }
    const yMax = niceMax(max * 1.12);
    const y = (v) => top + plotH - (v / yMax) * plotH;
    const x0 = px + axisW;
    const x1 = px + panelW(panel);

    out.push(`<text x="${x0}" y="${top - 12}" font-size="13" font-weight="600" fill="#333">${esc(panel.title)}</text>`);
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const v = (yMax / ticks) * i;
      const yy = y(v).toFixed(1);
      out.push(
        `<line x1="${x0}" x2="${x1}" y1="${yy}" y2="${yy}" stroke="${i ? '#e8e8e8' : '#999'}" stroke-width="1"/>`,
      );
      out.push(
        `<text x="${x0 - 6}" y="${(+yy + 4).toFixed(1)}" text-anchor="end" fill="#555" font-size="11">${fmtTick(v)}</text>`,
      );
    }

    panel.scenarios.forEach((sc, gi) => {
      const gx = x0 + gi * groupW + groupPad / 2;
      servers.forEach((sv, si) => {
        const r = get(sc, sv);
        const x = gx + si * (bw + gap);
        const color = COLORS[sv] || FALLBACK[si % FALLBACK.length];
        if (!r || !(r.value >= 0)) {
          out.push(
            `<text x="${x + bw / 2}" y="${top + plotH - 4}" text-anchor="middle" font-size="9" fill="#aaa">–</text>`,
          );
          return;
        }
        const yy = y(r.value);
        const h = top + plotH - yy;
        out.push(
          `<rect x="${x}" y="${yy.toFixed(1)}" width="${bw}" height="${h.toFixed(1)}" fill="${color}"${r.valid ? '' : ` fill-opacity="0.3" stroke="${color}" stroke-dasharray="3 2"`}><title>${esc(sv)} · ${esc(String(labels[sc] || sc).replace('\n', ', '))}: ${Math.round(r.value)} req/s${r.valid ? '' : ' (INVALID: errors, non-2xx or failed check)'}</title></rect>`,
        );
        const label = r.valid ? fmtK(r.value) : fmtK(r.value) + ' ✗';
        out.push(
          `<text transform="translate(${(x + bw / 2 + 3.5).toFixed(1)} ${(yy - 4).toFixed(1)}) rotate(-90)" font-size="10" fill="#333">${esc(label)}</text>`,
        );
      });
      const cx = gx + (servers.length * (bw + gap) - gap) / 2;
      const [l1, l2] = String(labels[sc] || sc).split('\n');
      out.push(`<text x="${cx}" y="${top + plotH + 18}" text-anchor="middle" fill="#222">${esc(l1)}</text>`);
      if (l2)
        out.push(
          `<text x="${cx}" y="${top + plotH + 33}" text-anchor="middle" fill="#666" font-size="11">${esc(l2)}</text>`,
        );
    });
    px = x1 + panelGap;
  }

  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { barChart, COLORS };
