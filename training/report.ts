// The training/evaluation report: one self-contained HTML page next to the same numbers as JSON.
// The charts are drawn by uPlot, whose script and stylesheet are read from node_modules when the
// page is written and inlined, so the file opens offline, anywhere, and never fetches anything.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { EvaluationReport } from '../models/metrics.ts';
import type { EpochRecord } from './fit.ts';

export type ScoredReport = EvaluationReport & { clipAccuracy?: number };

/** A training history drawn next to the main one, e.g. one fold of a cross-validation. */
export interface FoldHistory {
  name: string;
  history: EpochRecord[];
  /** 1-based epoch that fold picked, marked on its curve. */
  bestEpoch?: number;
}

/** One video (or clip) of the scored data. */
export interface PerVideoRow {
  name: string;
  frames: number;
  /** Fraction of its frames labeled right. */
  accuracy: number;
  /** Its true label when it has one (folder-per-class clips). */
  truth?: string;
  /** Folder-per-class clips: fraction of the frames in its middle half labeled right. */
  middleAccuracy?: number;
  /** The label of most of its frames. */
  majority: string;
  /** Which data it belongs to, e.g. 'held out' or 'training'. */
  group?: string;
}

export interface ReportData {
  title: string;
  /** One or two sentences on which data the figures are on (split, epoch, stitching). */
  scope?: string;
  history?: EpochRecord[];
  /** 1-based epoch whose weights were kept. */
  bestEpoch?: number;
  /** Set when training stopped before its epoch budget. */
  earlyStop?: { epoch: number; patience: number };
  /** Extra curves (cross-validation folds), drawn dashed beside the main history. */
  folds?: FoldHistory[];
  /** The main evaluation: its per-class table and confusion matrix are shown. */
  evaluation?: ScoredReport;
  /** Name of the data the main evaluation is on, for the summary table. */
  evaluationName?: string;
  /** Further scores shown as rows of the summary table (other data, stitched sequences). */
  alsoScored?: { name: string; note?: string; report: ScoredReport }[];
  perVideo?: PerVideoRow[];
  config?: Record<string, unknown>;
  dataset?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? (x * 100).toFixed(1) : '–');
/** JSON safe to put inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v, finite).replace(/</g, '\\u003c');
function finite(_: string, v: unknown) {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}

let uplotAssets: { js: string; css: string } | undefined;
function uplot(): { js: string; css: string } {
  if (!uplotAssets) {
    const require = createRequire(import.meta.url);
    const dir = require.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '');
    uplotAssets = { js: readFileSync(`${dir}uPlot.iife.min.js`, 'utf8'), css: readFileSync(`${dir}uPlot.min.css`, 'utf8') };
  }
  return uplotAssets;
}

function metricsRow(name: string, r: ScoredReport, note?: string): string {
  return (
    `<tr><th>${esc(name)}${note ? `<div class="note">${esc(note)}</div>` : ''}</th><td>${r.frames}</td><td>${pct(r.accuracy)}%</td><td>${pct(r.macroF1)}</td><td>${pct(r.edit)}</td>` +
    `<td>${pct(r.f1['10'])} / ${pct(r.f1['25'])} / ${pct(r.f1['50'])}</td><td>${pct(r.mAP)}</td><td>${r.clipAccuracy !== undefined ? `${pct(r.clipAccuracy)}%` : '–'}</td></tr>`
  );
}

function summaryTable(d: ReportData): string {
  const rows = [
    d.evaluation ? metricsRow(d.evaluationName ?? 'scored data', d.evaluation) : '',
    ...(d.alsoScored ?? []).map((s) => metricsRow(s.name, s.report, s.note)),
  ];
  return `<table class="metrics"><thead><tr><th>data</th><th>frames</th><th>frame accuracy</th><th>macro F1</th><th>Edit</th><th>F1@{10,25,50}</th><th>mAP</th><th>clip accuracy</th></tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Frame accuracy and clip accuracy in %; macro F1, Edit, F1@k (segments matched at IoU ≥ k%) and per-frame mAP ×100. Clip accuracy: a clip counts as right when most of its frames are.</p>`;
}

function perClassTable(ev: ScoredReport): string {
  return `<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>frames</th></tr></thead><tbody>${ev.perClass
    .map((c) => `<tr><th>${esc(c.label)}</th><td>${pct(c.precision)}%</td><td>${pct(c.recall)}%</td><td>${pct(c.f1)}</td><td>${c.support}</td></tr>`)
    .join('')}</tbody></table>`;
}

function confusionTable(ev: ScoredReport): string {
  const head = `<tr><th class="corner">true ↓ \\ predicted →</th>${ev.classes.map((c) => `<th>${esc(c)}</th>`).join('')}<th>frames</th></tr>`;
  const rows = ev.confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    const cells = row.map((v, j) => {
      const share = total ? v / total : 0;
      const hue = i === j ? '40,140,80' : '210,70,50';
      return `<td title="${v} of ${total} frames" style="background:rgba(${hue},${(share * 0.85).toFixed(2)});color:${share > 0.55 ? '#fff' : '#111'}">${total ? (share * 100).toFixed(0) : '–'}%<span class="count">${v}</span></td>`;
    });
    return `<tr><th>${esc(ev.classes[i]!)}</th>${cells.join('')}<td class="total">${total}</td></tr>`;
  });
  return `<table class="cm">${head}${rows.join('')}</table><p class="note">Each row is one true class: the share of its frames given each label (frame counts below). The diagonal is right.</p>`;
}

function perVideoTable(rows: readonly PerVideoRow[]): string {
  const hasTruth = rows.some((r) => r.truth !== undefined);
  const hasGroup = rows.some((r) => r.group !== undefined);
  const hasMiddle = rows.some((r) => r.middleAccuracy !== undefined);
  const th = (label: string, type: 'text' | 'num') => `<th data-type="${type}" tabindex="0">${label}</th>`;
  const head = `<tr>${th('video', 'text')}${hasGroup ? th('data', 'text') : ''}${hasTruth ? th('true label', 'text') : ''}${th('most frames labeled', 'text')}${th('frames', 'num')}${th('frame accuracy', 'num')}${hasMiddle ? th('middle half', 'num') : ''}</tr>`;
  const body = rows.map((r) => {
    const wrong = r.truth !== undefined && r.truth !== r.majority;
    return (
      `<tr${wrong ? ' class="wrong"' : ''}><td class="name">${esc(r.name)}</td>${hasGroup ? `<td class="name">${esc(r.group ?? '')}</td>` : ''}${hasTruth ? `<td class="name">${esc(r.truth ?? '')}</td>` : ''}` +
      `<td class="name">${esc(r.majority)}</td><td data-v="${r.frames}">${r.frames}</td><td data-v="${Number.isFinite(r.accuracy) ? r.accuracy : -1}">${pct(r.accuracy)}%</td>` +
      (hasMiddle ? `<td data-v="${r.middleAccuracy ?? -1}">${pct(r.middleAccuracy)}%</td>` : '') +
      '</tr>'
    );
  });
  return `<table class="sortable"><thead>${head}</thead><tbody>${body.join('')}</tbody></table><p class="note">Click a column to sort.${hasTruth ? " Rows in red: the majority of frames got another label than the clip's." : ''}${hasMiddle ? ' Middle half: the frames from a quarter to three quarters of the clip, away from its first frames, where a labeler that sees only the past cannot know the action yet.' : ''}</p>`;
}

/** Short key/value table of a plain object; nested objects and long arrays are summarised. */
function kvTable(obj: Record<string, unknown>): string {
  const show = (v: unknown): string => {
    if (v === null || v === undefined) return '–';
    if (Array.isArray(v)) return v.length <= 8 && v.every((x) => typeof x !== 'object') ? v.join(', ') : `${v.length} items`;
    if (typeof v === 'object') {
      return (
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => typeof x !== 'object' || x === null)
          .map(([k, x]) => `${k} ${x}`)
          .join(', ') || `${Object.keys(v).length} fields`
      );
    }
    return String(v);
  };
  const cells = (k: string, v: unknown) => `<th>${esc(k)}</th><td class="name">${esc(show(v))}</td>`;
  const entries = Object.entries(obj);
  // Long tables (the training config) go in two column pairs so they stay short.
  const perRow = entries.length > 10 ? 2 : 1;
  const rows: string[] = [];
  for (let i = 0; i < entries.length; i += perRow)
    rows.push(
      `<tr>${entries
        .slice(i, i + perRow)
        .map(([k, v]) => cells(k, v))
        .join('')}</tr>`,
    );
  return `<table class="kv">${rows.join('')}</table>`;
}

function datasetTable(ds: Record<string, unknown>): string {
  const splits = ['train', 'val'].filter((k) => ds[k] && typeof ds[k] === 'object') as ('train' | 'val')[];
  if (splits.length === 0) return kvTable(ds);
  const classes = (Array.isArray(ds.classes) ? ds.classes : []) as string[];
  const rest = Object.fromEntries(Object.entries(ds).filter(([k]) => !splits.includes(k as 'train')));
  const rows = splits.map((k) => {
    const s = ds[k] as { videos?: number; frames?: number; framesPerClass?: Record<string, number> };
    return `<tr><th>${k === 'val' ? 'validation' : 'training'}</th><td>${s.videos ?? '–'}</td><td>${s.frames ?? '–'}</td>${classes.map((c) => `<td>${s.framesPerClass?.[c] ?? 0}</td>`).join('')}</tr>`;
  });
  return `${kvTable(rest)}<table><thead><tr><th>split</th><th>videos</th><th>frames</th>${classes.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Frames per class are counted at the bundle's frame rate, before augmentation and stitching.</p>`;
}

function rawJson(label: string, obj: unknown): string {
  return `<details><summary>${esc(label)} as JSON</summary><pre>${esc(JSON.stringify(obj, finite, 2))}</pre></details>`;
}

// Runs in the page: draws the curves with uPlot from the embedded data, marks the kept epoch and
// the early stop, and makes the per-video table sortable. Plain ES2017, no modules.
const PAGE_SCRIPT = `
(function () {
  var d = JSON.parse(document.getElementById('report-data').textContent);
  var TRAIN = '#d2452c', VAL = '#2c6fd2', FOLD = ['#7b5ea7', '#2a9d8f', '#e9a23b', '#8d6e63', '#5c7cfa', '#c2185b'];
  function markers(u) {
    var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    function vline(epoch, color, text, dash, row) {
      if (epoch == null) return;
      var x = u.valToPos(epoch, 'x', true);
      ctx.save(); ctx.strokeStyle = color; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash(dash.map(function (v) { return v * devicePixelRatio; }));
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      ctx.setLineDash([]); ctx.fillStyle = color; ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic'; ctx.font = (11 * devicePixelRatio) + 'px system-ui,sans-serif';
      var w = ctx.measureText(text).width, tx = x + 4 * devicePixelRatio;
      if (tx + w > u.bbox.left + u.bbox.width) tx = x - 4 * devicePixelRatio - w;
      ctx.fillText(text, tx, top + (12 + row * 14) * devicePixelRatio); ctx.restore();
    }
    vline(d.bestEpoch, '#1b7f3b', 'kept: epoch ' + d.bestEpoch, [], 0);
    if (d.earlyStop) vline(d.earlyStop.epoch, '#888', 'early stop', [6, 4], 1);
  }
  function chart(el, o) {
    if (!el) return;
    var xs = d.epochs, data = [xs], series = [{ label: 'epoch' }];
    o.series.forEach(function (s) {
      data.push(s.ys.map(function (v) { return v == null ? null : v * (o.scale || 1); }));
      series.push({ label: s.name, stroke: s.color, width: s.width || 2, dash: s.dash, points: { show: xs.length < 40 }, value: function (u, v) { return v == null ? '–' : o.fmt(v); } });
    });
    var small = !!o.small;
    var opts = {
      width: Math.min(small ? 430 : 880, el.parentElement.clientWidth || 880), height: small ? 200 : 290,
      title: o.title,
      scales: { x: { time: false, range: [xs[0], xs[xs.length - 1] + (xs.length === 1 ? 1 : 0)] }, y: o.yRange ? { range: o.yRange } : { auto: true } },
      axes: [
        { label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500], values: function (u, v) { return v.map(function (x) { return x; }); }, grid: { stroke: '#e6e6e6' } },
        { label: o.yLabel, size: 64, values: function (u, v) { return v.map(o.fmt); }, grid: { stroke: '#e6e6e6' } }
      ],
      series: series,
      legend: { live: true },
      hooks: { draw: [markers] }
    };
    // Kept on window so a test (or a curious reader's console) can reach the charts.
    (window.framewiseCharts = window.framewiseCharts || {})[el.id] = new uPlot(opts, data, el);
  }
  function foldSeries(key, label) {
    return (d.folds || []).map(function (f, i) {
      var by = {}; f.history.forEach(function (h) { by[h.epoch] = h[key]; });
      return { name: f.name + ' ' + label, color: FOLD[i % FOLD.length], dash: [5, 4], width: 1.5, ys: d.epochs.map(function (e) { return by[e] == null ? null : by[e]; }) };
    });
  }
  if (d.epochs && d.epochs.length) {
    var H = d.history, col = function (k) { return H.map(function (h) { return h[k]; }); };
    var fixed = function (n) { return function (v) { return v == null ? '' : v.toFixed(n); }; };
    chart(document.getElementById('chart-loss'), { title: 'Loss', yLabel: 'cross-entropy per frame (nats)', fmt: fixed(2),
      series: [{ name: 'training', color: TRAIN, ys: col('trainLoss') }, { name: 'validation', color: VAL, ys: col('valLoss') }].concat(foldSeries('valLoss', 'validation')) });
    chart(document.getElementById('chart-acc'), { title: 'Frame accuracy', yLabel: 'frames labeled right (%)', scale: 100, yRange: [0, 100], fmt: function (v) { return v == null ? '' : Math.round(v) + '%'; },
      series: [{ name: 'training', color: TRAIN, ys: col('trainAccuracy') }, { name: 'validation', color: VAL, ys: col('valAccuracy') }].concat(foldSeries('valAccuracy', 'validation')) });
    chart(document.getElementById('chart-lr'), { small: true, title: 'Learning rate (at the end of each epoch)', yLabel: 'learning rate', fmt: function (v) { return v == null ? '' : v.toExponential(1); },
      series: [{ name: 'learning rate', color: '#555', ys: col('lr') }] });
    chart(document.getElementById('chart-grad'), { small: true, title: 'Gradient norm (mean per step, before clipping)', yLabel: 'global L2 norm', fmt: fixed(2),
      series: [{ name: '|g|', color: '#8a5a00', ys: col('gradNorm') }] });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var ths = table.querySelectorAll('thead th');
    Array.prototype.forEach.call(ths, function (th, col) {
      function sort() {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var num = th.getAttribute('data-type') === 'num', body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var r = num ? Number(x.getAttribute('data-v')) - Number(y.getAttribute('data-v')) : x.textContent.localeCompare(y.textContent, undefined, { numeric: true });
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } });
    });
  });
})();
`;

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:940px;padding:0 1em;color:#1d1d1f}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.scope{background:#f2f6fc;border-left:4px solid #2c6fd2;padding:.6em 1em;margin:1em 0}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:4px 9px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f5f5f7;font-weight:600}td.name,th:first-child{text-align:left}.note{color:#666;font-size:12.5px;font-weight:normal}
table.cm td{min-width:4.2em;text-align:center}table.cm .count{display:block;font-size:11px;opacity:.75}table.cm td.total{background:#fafafa}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[aria-sort=ascending]::after{content:' ▲'}table.sortable th[aria-sort=descending]::after{content:' ▼'}
tr.wrong td{color:#b3261e}.charts{display:flex;flex-wrap:wrap;gap:1em 1.5em}.charts>div{flex:1 1 100%}.charts>div.small{flex:1 1 400px}
details{margin:.6em 0}summary{cursor:pointer;color:#2c6fd2}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
.u-title{font-size:14px!important;font-weight:600!important}.u-legend{font-size:12.5px}.u-legend .u-series:first-child{display:none}table.kv th,th[data-type=text]{text-align:left}`;

export function renderReportHtml(d: ReportData): string {
  const parts: string[] = [`<h1>${esc(d.title)}</h1>`];
  if (d.scope) parts.push(`<p class="scope">${esc(d.scope)}</p>`);
  const hasCurves = !!d.history && d.history.length > 0;
  if (hasCurves) {
    const h = d.history!;
    const stopLine = d.earlyStop
      ? ` Training stopped early after epoch ${d.earlyStop.epoch}: no better validation loss for ${d.earlyStop.patience} epochs.`
      : ` It ran all ${h.length} epochs.`;
    parts.push(`<h2>Training curves</h2><p>${d.bestEpoch ? `The green line marks epoch ${d.bestEpoch}, whose weights were kept (lowest validation loss, or training loss without a validation set).` : ''}${stopLine}${d.folds?.length ? ` Dashed curves: the ${d.folds.length} cross-validation folds.` : ''}</p>
<div class="charts"><div id="chart-loss"></div><div id="chart-acc"></div><div class="small" id="chart-lr"></div><div class="small" id="chart-grad"></div></div>`);
  }
  const ev = d.evaluation;
  if (ev || d.alsoScored?.length) parts.push(`<h2>Scores</h2>${summaryTable(d)}`);
  if (ev) {
    parts.push(`<h2>Per class${d.evaluationName ? ` (${esc(d.evaluationName)})` : ''}</h2>${perClassTable(ev)}`);
    parts.push(`<h2>Confusion matrix${d.evaluationName ? ` (${esc(d.evaluationName)})` : ''}</h2>${confusionTable(ev)}`);
  }
  if (d.perVideo && d.perVideo.length > 0) parts.push(`<h2>Per video</h2>${perVideoTable(d.perVideo)}`);
  if (d.config) parts.push(`<h2>Configuration</h2>${kvTable(d.config)}${rawJson('configuration', d.config)}`);
  if (d.dataset) parts.push(`<h2>Dataset</h2>${datasetTable(d.dataset)}${rawJson('dataset', d.dataset)}`);
  if (d.extra) parts.push(`<h2>Details</h2>${rawJson('details', d.extra)}`);
  const data = {
    epochs: (d.history ?? []).map((x) => x.epoch),
    history: d.history ?? [],
    bestEpoch: d.bestEpoch ?? null,
    earlyStop: d.earlyStop ?? null,
    folds: d.folds ?? [],
  };
  const { js, css } = uplot();
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(d.title)}</title><style>${css}\n${STYLE}</style>
<body>${parts.join('\n')}
<script type="application/json" id="report-data">${scriptJson(data)}</script>
${hasCurves ? `<script>${js.replace(/<\/script/gi, '<\\/script')}</script>` : ''}<script>${PAGE_SCRIPT}</script>
</body></html>\n`;
}

/** Writes `<base>.html` and `<base>.json`. */
export async function writeReport(base: string, d: ReportData): Promise<{ html: string; json: string }> {
  const html = `${base}.html`;
  const json = `${base}.json`;
  await writeFile(html, renderReportHtml(d));
  await writeFile(json, JSON.stringify(d, finite, 2) + '\n');
  return { html, json };
}
