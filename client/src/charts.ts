// Canvas drawings: a scrolling probability timeline (live) and a segment strip with a playhead
// (file view). Plain 2D canvas: two small charts do not justify a charting dependency.

const PALETTE = ['#4ea1ff', '#ff9f43', '#7bd88f', '#ff6b6b', '#c792ea', '#ffd166', '#2ec4b6', '#f78fb3', '#a0a0a0', '#e36414'];

export function classColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

export function renderLegend(el: HTMLElement, classes: readonly string[]): void {
  el.replaceChildren(
    ...classes.map((c, i) => {
      const s = document.createElement('span');
      s.textContent = c;
      s.style.setProperty('--c', classColor(i));
      return s;
    }),
  );
}

/** Keeps the last `capacity` probability vectors and draws one line per class, newest at the right. */
export class ProbabilityTimeline {
  private points: number[][] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly capacity = 150,
  ) {}

  push(probs: readonly number[]): void {
    this.points.push([...probs]);
    if (this.points.length > this.capacity) this.points.shift();
  }

  clear(): void {
    this.points = [];
    this.draw();
  }

  draw(): void {
    const ctx = this.canvas.getContext('2d')!;
    const { width: w, height: h } = this.canvas;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = '#2a3340';
    ctx.lineWidth = 1;
    for (const y of [0.25, 0.5, 0.75]) {
      ctx.beginPath();
      ctx.moveTo(0, h - y * h);
      ctx.lineTo(w, h - y * h);
      ctx.stroke();
    }
    const n = this.points.length;
    if (n === 0) return;
    const classes = this.points[n - 1]!.length;
    const dx = w / Math.max(1, this.capacity - 1);
    const x0 = w - (n - 1) * dx;
    ctx.lineWidth = 2;
    for (let c = 0; c < classes; c++) {
      ctx.strokeStyle = classColor(c);
      ctx.beginPath();
      this.points.forEach((p, i) => {
        const x = x0 + i * dx;
        const y = h - 4 - (p[c] ?? 0) * (h - 8);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
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
  private frames: { timestampMs: number; cls: number }[] = [];
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
    this.frames.push({ timestampMs, cls: this.classes().indexOf(label) });
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
    const classes = this.classes();
    // Streamed frames: a thin strip on top, one tick per labeled frame.
    const top = 10;
    this.frames.forEach((f, i) => {
      const next = this.frames[i + 1]?.timestampMs ?? f.timestampMs + 100;
      ctx.fillStyle = f.cls >= 0 ? classColor(f.cls) : '#555';
      ctx.fillRect(x(f.timestampMs), 0, Math.max(1, x(next) - x(f.timestampMs)), top);
    });
    ctx.font = '13px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (const s of this.segments) {
      const cls = classes.indexOf(s.label);
      const x0 = x(s.startMs);
      const x1 = x(s.endMs);
      ctx.fillStyle = cls >= 0 ? classColor(cls) : '#555';
      ctx.fillRect(x0, top + 4, Math.max(1, x1 - x0), h - top - 8);
      if (x1 - x0 > 40) {
        ctx.fillStyle = '#111418';
        ctx.fillText(s.label, x0 + 6, (h + top) / 2, x1 - x0 - 10);
      }
    }
    if (this.playheadMs >= 0) {
      ctx.fillStyle = '#fff';
      ctx.fillRect(x(this.playheadMs) - 1, 0, 2, h);
    }
  }
}
