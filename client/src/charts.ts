// Canvas drawings: a scrolling probability timeline (live) and a segment strip with a playhead
// (file view). Plain 2D canvas: they redraw at frame rate, with axes drawn here.

import { UNKNOWN_LABEL } from '../../core/types.ts';

// No grey among the classes: grey is `unknown` (none of the classes).
const PALETTE = ['#4ea1ff', '#ff9f43', '#7bd88f', '#ff6b6b', '#c792ea', '#ffd166', '#2ec4b6', '#f78fb3', '#d4a373', '#e36414'];
/** The neutral colour of `unknown` frames and segments. */
export const UNKNOWN_COLOR = '#8a8f98';

export function classColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** The colour of a label: its class's, grey for `unknown`, '' for anything else (no label yet). */
export function labelColor(label: string, classes: readonly string[]): string {
  const i = classes.indexOf(label);
  if (i >= 0) return classColor(i);
  return label === UNKNOWN_LABEL ? UNKNOWN_COLOR : '';
}

/** The classes, then `unknown` in grey (frames below the bundle's confidence threshold). */
export function renderLegend(el: HTMLElement, classes: readonly string[]): void {
  const entry = (name: string, color: string) => {
    const s = document.createElement('span');
    s.textContent = name;
    s.style.setProperty('--c', color);
    return s;
  };
  const unknown = entry(UNKNOWN_LABEL, UNKNOWN_COLOR);
  unknown.title = 'below the confidence threshold: none of the classes';
  el.replaceChildren(...classes.map((c, i) => entry(c, classColor(i))), unknown);
}

/** Seconds between ticks so that a span of `spanSec` gets about `want` ticks. */
function tickStep(spanSec: number, want: number): number {
  const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
  return steps.find((s) => spanSec / s <= want) ?? 3600;
}

function clock(sec: number): string {
  if (sec < 60) return `${Number.isInteger(sec) ? sec : sec.toFixed(1)} s`;
  const m = Math.floor(sec / 60);
  const r = Math.round(sec - m * 60);
  return `${m}:${String(r).padStart(2, '0')}`;
}

/**
 * Keeps the last `capacity` probability vectors (with their capture times) and draws one line per
 * class, newest at the right: y is the probability (0-100%), x the seconds before the newest label.
 */
export class ProbabilityTimeline {
  private points: { probs: number[]; ms: number }[] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly capacity = 150,
  ) {}

  push(probs: readonly number[], timestampMs: number): void {
    this.points.push({ probs: [...probs], ms: timestampMs });
    if (this.points.length > this.capacity) this.points.shift();
  }

  clear(): void {
    this.points = [];
    this.draw();
  }

  draw(): void {
    const ctx = this.canvas.getContext('2d')!;
    const { width: w, height: h } = this.canvas;
    const L = 44,
      B = 22,
      T = 8,
      R = 8;
    const pw = w - L - R,
      ph = h - T - B;
    ctx.clearRect(0, 0, w, h);
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    ctx.fillStyle = '#8b96a5';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const y of [0, 0.25, 0.5, 0.75, 1]) {
      const py = T + ph - y * ph;
      ctx.strokeStyle = y === 0 ? '#46505e' : '#2a3340';
      ctx.beginPath();
      ctx.moveTo(L, py);
      ctx.lineTo(w - R, py);
      ctx.stroke();
      ctx.fillText(`${y * 100}%`, L - 6, py);
    }
    const n = this.points.length;
    // Time axis: seconds before the newest label (the x position of a point is its index, so a
    // stall shows as a squeeze, and the ticks say how much time the window holds).
    const newest = this.points[n - 1]?.ms ?? 0;
    const oldest = this.points[0]?.ms ?? 0;
    const dx = pw / Math.max(1, this.capacity - 1);
    const x0 = L + pw - (n - 1) * dx;
    const xOf = (i: number) => x0 + i * dx;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    if (n > 1 && newest > oldest) {
      const step = tickStep((newest - oldest) / 1000, 6);
      let i = n - 1;
      let lastX = Infinity;
      for (let k = 0; ; k++) {
        const target = newest - k * step * 1000;
        if (target < oldest) break;
        while (i > 0 && this.points[i]!.ms > target) i--;
        const x = xOf(i);
        // After a stall several ticks land on one point: keep the labels apart.
        if (lastX - x < 40) continue;
        lastX = x;
        ctx.textAlign = k === 0 ? 'right' : 'center';
        ctx.strokeStyle = '#2a3340';
        ctx.beginPath();
        ctx.moveTo(x, T);
        ctx.lineTo(x, T + ph);
        ctx.stroke();
        ctx.fillText(k === 0 ? 'now' : `−${clock(k * step)}`, x, T + ph + 5);
      }
    }
    if (n === 0) return;
    const classes = this.points[n - 1]!.probs.length;
    ctx.lineWidth = 2;
    for (let c = 0; c < classes; c++) {
      ctx.strokeStyle = classColor(c);
      ctx.beginPath();
      this.points.forEach((p, i) => {
        const y = T + ph - (p.probs[c] ?? 0) * ph;
        if (i === 0) ctx.moveTo(xOf(i), y);
        else ctx.lineTo(xOf(i), y);
      });
      ctx.stroke();
    }
  }
}

export interface StripSegment {
  label: string;
  startMs: number;
  endMs: number;
}

/**
 * Segments colored by class over the video's duration, plus the per-frame labels streamed while a
 * job runs (thin bar on top) and a playhead. Click to seek.
 */
export class SegmentStrip {
  private segments: StripSegment[] = [];
  private frames: { timestampMs: number; cls: number; label: string }[] = [];
  private durationMs = 0;
  private playheadMs = -1;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly classes: () => readonly string[],
    onSeek: (ms: number) => void,
  ) {
    canvas.addEventListener('click', (ev) => {
      if (this.durationMs <= 0) return;
      const r = canvas.getBoundingClientRect();
      onSeek(((ev.clientX - r.left) / r.width) * this.durationMs);
    });
  }

  reset(durationMs: number): void {
    this.segments = [];
    this.frames = [];
    this.durationMs = durationMs;
    this.playheadMs = -1;
    this.draw();
  }

  setDuration(ms: number): void {
    if (ms > 0) this.durationMs = ms;
  }

  addFrame(timestampMs: number, label: string): void {
    this.frames.push({ timestampMs, cls: this.classes().indexOf(label), label });
  }

  setSegments(segments: StripSegment[]): void {
    this.segments = segments;
    const end = segments.at(-1)?.endMs ?? 0;
    if (end > this.durationMs) this.durationMs = end;
  }

  setPlayhead(ms: number): void {
    this.playheadMs = ms;
  }

  draw(): void {
    const ctx = this.canvas.getContext('2d')!;
    const { width: w, height: h } = this.canvas;
    ctx.clearRect(0, 0, w, h);
    const span = this.durationMs || Math.max(1, this.frames.at(-1)?.timestampMs ?? 1);
    const x = (ms: number) => (ms / span) * w;
    // Seconds ticks along the bottom (the strip spans the video's duration).
    const axis = 16;
    const full = h;
    {
      const step = tickStep(span / 1000, 10);
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      ctx.fillStyle = '#8b96a5';
      ctx.strokeStyle = '#46505e';
      for (let t = 0; t <= span / 1000 + 1e-6; t += step) {
        const px = Math.min(w - 1, x(t * 1000));
        ctx.fillRect(px, full - axis, 1, 4);
        ctx.textAlign = t === 0 ? 'left' : px > w - 20 ? 'right' : 'center';
        ctx.fillText(clock(Math.round(t * 10) / 10), px, full - axis + 4);
      }
    }
    const classes = this.classes();
    // Streamed frames: a thin strip on top, one tick per labeled frame.
    const top = 10;
    this.frames.forEach((f, i) => {
      const next = this.frames[i + 1]?.timestampMs ?? f.timestampMs + 100;
      ctx.fillStyle = labelColor(f.label, classes) || '#555';
      ctx.fillRect(x(f.timestampMs), 0, Math.max(1, x(next) - x(f.timestampMs)), top);
    });
    ctx.font = '13px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (const s of this.segments) {
      const x0 = x(s.startMs);
      const x1 = x(s.endMs);
      ctx.fillStyle = labelColor(s.label, classes) || '#555';
      ctx.fillRect(x0, top + 4, Math.max(1, x1 - x0), h - axis - top - 8);
      if (x1 - x0 > 40) {
        ctx.fillStyle = '#111418';
        ctx.textAlign = 'left';
        ctx.fillText(s.label, x0 + 6, (h - axis + top) / 2, x1 - x0 - 10);
      }
    }
    if (this.playheadMs >= 0) {
      ctx.fillStyle = '#fff';
      ctx.fillRect(x(this.playheadMs) - 1, 0, 2, h - axis);
    }
  }
}
