// Live view: webcam -> frames scaled to the model input on a canvas -> the server, at a chosen rate
// with at most `maxInFlight` frames unanswered (latest-wins on both ends: when the server is
// behind, the client skips captures instead of queueing them). Shows the current label and
// score, a scrolling probability timeline, latency (capture to label, on this clock) and rates.
import { encodeFrame, type FrameFormat, type ServerMessage } from '../../server/protocol.ts';
import { labelColor, ProbabilityTimeline, renderLegend } from './charts.ts';
import type { Connection } from './connection.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export class LiveView {
  private stream: MediaStream | undefined;
  private timer: number | undefined;
  private readonly video = $<HTMLVideoElement>('live-video');
  private readonly canvas = document.createElement('canvas');
  private readonly timeline = new ProbabilityTimeline($<HTMLCanvasElement>('live-timeline'));
  private nextIndex = 0;
  /** Sent frame index -> capture time, until a label, dropped or error answers it. */
  private inFlight = new Map<number, number>();
  private latencies: number[] = [];
  private labelTimes: number[] = [];
  private dropped = 0;
  private skipped = 0;
  private sending = false;
  private drawPending = false;

  constructor(private readonly conn: Connection) {
    $('live-start').addEventListener('click', () => void this.start());
    $('live-stop').addEventListener('click', () => this.stop());
    $('live-reset').addEventListener('click', () => this.reset());
    $('live-fps').addEventListener('change', () => this.schedule());
    conn.on((m) => this.onMessage(m));
    conn.whenReady(() => {
      const w = conn.welcome!;
      renderLegend($('live-legend'), w.model.classes);
      // Capture at the rate the bundle was trained at; the server resamples whatever arrives.
      ($<HTMLInputElement>('live-fps')).value ||= String(w.model.fps ?? w.limits.liveFps);
      // A new connection is a new session: zero state, indices from 0.
      this.nextIndex = 0;
      this.inFlight.clear();
    });
  }

  async start(): Promise<void> {
    this.message('');
    if (!navigator.mediaDevices?.getUserMedia) {
      this.message('This browser gives no camera access here: open the page over https or on localhost.');
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      const name = (err as DOMException)?.name;
      this.message(
        name === 'NotAllowedError' || name === 'SecurityError'
          ? 'Camera access was refused. Allow the camera for this page (the icon in the address bar) and press Start again.'
          : name === 'NotFoundError' || name === 'OverconstrainedError'
            ? 'No camera was found. Connect a webcam and press Start again.'
            : name === 'NotReadableError'
              ? 'The camera is in use by another application.'
              : `The camera could not be opened (${name ?? String(err)}).`,
      );
      return;
    }
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => undefined);
    $<HTMLButtonElement>('live-start').disabled = true;
    $<HTMLButtonElement>('live-stop').disabled = false;
    $<HTMLButtonElement>('live-reset').disabled = false;
    this.schedule();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = undefined;
    this.video.srcObject = null;
    $<HTMLButtonElement>('live-start').disabled = false;
    $<HTMLButtonElement>('live-stop').disabled = true;
  }

  reset(): void {
    this.conn.sendJson({ type: 'reset' });
    this.nextIndex = 0;
    this.inFlight.clear();
    this.timeline.clear();
    this.setLabel('–', '');
  }

  private schedule(): void {
    clearInterval(this.timer);
    if (!this.stream) return;
    const fps = Math.min(30, Math.max(1, Number(($<HTMLInputElement>('live-fps')).value) || 15));
    this.timer = window.setInterval(() => void this.tick(), 1000 / fps);
  }

  private async tick(): Promise<void> {
    const w = this.conn.welcome;
    if (!w || !this.conn.ready || this.sending || this.video.readyState < 2) return;
    if (this.inFlight.size >= w.limits.maxInFlight) {
      this.skipped += 1;
      return;
    }
    this.sending = true;
    try {
      const size = w.model.inputSize;
      const format = ($<HTMLSelectElement>('live-format')).value as FrameFormat;
      const captured = performance.timeOrigin + performance.now();
      const payload = await this.capture(size, format, w.model.crop);
      const index = this.nextIndex++;
      this.inFlight.set(index, captured);
      this.conn.send(encodeFrame({ index, timestampMs: captured, format, width: size, height: size }, payload));
    } finally {
      this.sending = false;
    }
  }

  /** Makes the square model input the way the bundle was trained: center crop, or fit with black bars. */
  private async capture(size: number, format: FrameFormat, crop: 'center' | 'pad'): Promise<Uint8Array> {
    this.canvas.width = size;
    this.canvas.height = size;
    const ctx = this.canvas.getContext('2d', { willReadFrequently: true })!;
    const vw = this.video.videoWidth;
    const vh = this.video.videoHeight;
    if (crop === 'pad') {
      const scale = size / Math.max(vw, vh);
      const [w, h] = [Math.round(vw * scale), Math.round(vh * scale)];
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, size, size);
      ctx.drawImage(this.video, 0, 0, vw, vh, (size - w) / 2, (size - h) / 2, w, h);
    } else {
      const side = Math.min(vw, vh);
      ctx.drawImage(this.video, (vw - side) / 2, (vh - side) / 2, side, side, 0, 0, size, size);
    }
    if (format === 'jpeg') {
      const blob = await new Promise<Blob | null>((ok) => this.canvas.toBlob(ok, 'image/jpeg', 0.9));
      if (!blob) throw new Error('JPEG encoding failed');
      return new Uint8Array(await blob.arrayBuffer());
    }
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const rgb = new Uint8Array(size * size * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i]!;
      rgb[j + 1] = rgba[i + 1]!;
      rgb[j + 2] = rgba[i + 2]!;
    }
    return rgb;
  }

  private onMessage(m: ServerMessage): void {
    if (!m.streamId.startsWith('live-')) return;
    const now = performance.timeOrigin + performance.now();
    if (m.type === 'label') {
      this.inFlight.delete(m.index);
      this.latencies.push(now - m.timestampMs);
      if (this.latencies.length > 100) this.latencies.shift();
      this.labelTimes.push(now);
      while (this.labelTimes.length > 0 && this.labelTimes[0]! < now - 2000) this.labelTimes.shift();
      this.setLabel(m.label, `${(m.score * 100).toFixed(0)}%`);
      $('live-index').textContent = String(m.index);
      this.timeline.push(m.probs, m.timestampMs);
      this.redraw();
    } else if (m.type === 'dropped') {
      for (const i of m.frames) this.inFlight.delete(i);
      this.dropped += m.count;
    } else if (m.type === 'error') {
      this.inFlight.delete(m.index);
      console.warn(`framewise: ${m.code}: ${m.message}`);
    }
    this.metrics();
  }

  private redraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.timeline.draw();
    });
  }

  private metrics(): void {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    $('live-latency').textContent = sorted.length ? `${q(0.5).toFixed(0)} ms (p95 ${q(0.95).toFixed(0)})` : '–';
    $('live-fps-out').textContent = (this.labelTimes.length / 2).toFixed(1);
    // Two kinds of loss: frames the server dropped to keep up (latest-wins), and camera frames this
    // page never sent because the allowed frames were still waiting for their labels.
    $('live-dropped').textContent = `${this.dropped} by the server · ${this.skipped} not sent (waiting for labels)`;
  }

  private setLabel(label: string, score: string): void {
    const el = $('live-label');
    el.textContent = label;
    el.dataset.label = label === '–' ? '' : label;
    el.style.color = labelColor(label, this.conn.welcome?.model.classes ?? []);
    $('live-score').textContent = score;
  }

  private message(text: string): void {
    const el = $('live-message');
    el.textContent = text;
    el.hidden = text === '';
  }
}
