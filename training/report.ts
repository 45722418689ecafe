// The training/evaluation report: one self-contained HTML page (inline SVG charts, no scripts,
// no network) next to the same numbers as JSON, so it opens anywhere and diffs in review.
import { writeFile } from 'node:fs/promises';
import type { EvaluationReport } from '../models/metrics.ts';
import type { EpochRecord } from './fit.ts';

export interface ReportData {
  title: string;
  history?: EpochRecord[];
  evaluation?: EvaluationReport & { clipAccuracy?: number };
  config?: Record<string, unknown>;
  dataset?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}` : '–');

/** A small line chart: series share the x axis (epochs); NaN points are skipped. */
function lineChart(title: string, xs: number[], series: { name: string; color: string; ys: number[] }[]): string {
  const W = 460, H = 220, L = 48, R = 12, T = 24, B = 32;
  const all = series.flatMap((s) => s.ys).filter(Number.isFinite);
  if (all.length === 0 || xs.length === 0) return '';
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const x = (v: number) => L + ((v - xs[0]!) / Math.max(1, xs[xs.length - 1]! - xs[0]!)) * (W - L - R);
  const y = (v: number) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const ticks = [lo, (lo + hi) / 2, hi];
  const paths = series.map((s) => {
    const pts = s.ys.map((v, i) => (Number.isFinite(v) ? `${x(xs[i]!).toFixed(1)},${y(v).toFixed(1)}` : '')).filter(Boolean);
    return `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.join(' ')}"/>`;
  });
  const legend = series.map((s, i) => `<text x="${L + 8 + i * 110}" y="${T - 8}" fill="${s.color}" font-size="12">■ ${esc(s.name)}</text>`);
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="#fafafa" stroke="#ccc"/>
${ticks.map((t) => `<text x="${L - 4}" y="${y(t) + 4}" font-size="10" text-anchor="end">${t.toPrecision(3)}</text>`).join('')}
<text x="${L}" y="${H - 10}" font-size="10">epoch ${xs[0]}</text><text x="${W - R}" y="${H - 10}" font-size="10" text-anchor="end">${xs[xs.length - 1]}</text>
${paths.join('\n')}${legend.join('')}</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

function confusionTable(ev: EvaluationReport): string {
  const max = Math.max(1, ...ev.confusion.flat());
  const head = `<tr><th>true \\ predicted</th>${ev.classes.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const rows = ev.confusion.map(
    (row, i) =>
      `<tr><th>${esc(ev.classes[i]!)}</th>${row.map((v) => `<td style="background:rgba(40,110,220,${(v / max).toFixed(2)});color:${v / max > 0.5 ? '#fff' : '#000'}">${v}</td>`).join('')}</tr>`,
  );
  return `<table class="cm">${head}${rows.join('')}</table>`;
}

export function renderReportHtml(d: ReportData): string {
  const parts: string[] = [`<h1>${esc(d.title)}</h1>`];
  if (d.history && d.history.length > 0) {
    const xs = d.history.map((h) => h.epoch);
    parts.push('<h2>Curves</h2><div class="charts">');
    parts.push(lineChart('loss (cross-entropy per frame)', xs, [
      { name: 'train', color: '#d2452c', ys: d.history.map((h) => h.trainLoss) },
      { name: 'validation', color: '#2c6fd2', ys: d.history.map((h) => h.valLoss) },
    ]));
    parts.push(lineChart('frame accuracy', xs, [
      { name: 'train', color: '#d2452c', ys: d.history.map((h) => h.trainAccuracy) },
      { name: 'validation', color: '#2c6fd2', ys: d.history.map((h) => h.valAccuracy) },
    ]));
    parts.push('</div>');
  }
  const ev = d.evaluation;
  if (ev) {
    parts.push(`<h2>Evaluation</h2><table class="kv">
<tr><th>frames</th><td>${ev.frames}</td></tr><tr><th>sequences</th><td>${ev.sequences}</td></tr>
<tr><th>frame accuracy</th><td>${pct(ev.accuracy)}%</td></tr><tr><th>macro F1</th><td>${pct(ev.macroF1)}</td></tr>
<tr><th>Edit</th><td>${pct(ev.edit)}</td></tr><tr><th>F1@{10,25,50}</th><td>${pct(ev.f1['10'])} / ${pct(ev.f1['25'])} / ${pct(ev.f1['50'])}</td></tr>
<tr><th>per-frame mAP</th><td>${pct(ev.mAP)}</td></tr>
${ev.clipAccuracy !== undefined ? `<tr><th>clip accuracy (majority of frames)</th><td>${pct(ev.clipAccuracy)}%</td></tr>` : ''}</table>`);
    parts.push(`<h3>Per class</h3><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>frames</th></tr>${ev.perClass
      .map((c) => `<tr><th>${esc(c.label)}</th><td>${pct(c.precision)}</td><td>${pct(c.recall)}</td><td>${pct(c.f1)}</td><td>${c.support}</td></tr>`)
      .join('')}</table>`);
    parts.push(`<h3>Confusion matrix</h3>${confusionTable(ev)}`);
  }
  for (const [name, obj] of [['Configuration', d.config], ['Dataset', d.dataset], ['Details', d.extra]] as const) {
    if (obj) parts.push(`<h2>${name}</h2><pre>${esc(JSON.stringify(obj, null, 2))}</pre>`);
  }
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>${esc(d.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{text-align:center;color:#555}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>
<body>${parts.join('\n')}</body></html>\n`;
}

/** Writes `<base>.html` and `<base>.json`. */
export async function writeReport(base: string, d: ReportData): Promise<{ html: string; json: string }> {
  const html = `${base}.html`;
  const json = `${base}.json`;
  await writeFile(html, renderReportHtml(d));
  await writeFile(json, JSON.stringify(d, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  return { html, json };
}
