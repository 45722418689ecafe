// Live view: webcam -> frames scaled to the model input on a canvas -> the server, at a chosen rate
// with at most `maxInFlight` frames unanswered (latest-wins on both ends: when the server is
// behind, the client skips captures instead of queueing them). Shows the current label and
// score, a scrolling probability timeline, latency (capture to label, on this clock) and rates.
// `where: this device` (?where=device) runs the whole chain in the page instead (device-runner.ts,
// loaded on demand) at the bundle's frames per second; then no frame goes on the socket.
import { encodeFrame, type FrameFormat, type ServerMessage } from '../../server/protocol.ts';
import { captureFrame, openCamera } from './capture.ts';
import { labelColor, ProbabilityTimeline, renderLegend } from './charts.ts';
import type { Connection } from './connection.ts';
import type { DeviceRunner } from './device-runner.ts';

/** With ?trace in the URL: the first frames labeled on the device (pixels and probabilities), for tests and checks. */
export interface DeviceTrace {
  index: number;
  rgb: Uint8Array;
  probs: Float32Array;
}
const TRACE_FRAMES = 40;

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
  private device: DeviceRunner | undefined;
  private readonly params = new URLSearchParams(location.search);
  private readonly trace: DeviceTrace[] | undefined = this.params.has('trace') ? [] : undefined;
  /** With ?trace: per frame labeled on the device, embed + head ms and capture-to-label ms (benchmarks). */
  private readonly times: { ms: number; latencyMs: number }[] = [];

  constructor(private readonly conn: Connection) {
    $('live-start').addEventListener('click', () => void this.start());
    $('live-stop').addEventListener('click', () => this.stop());
    $('live-reset').addEventListener('click', () => this.reset());
    $('live-fps').addEventListener('change', () => this.schedule());
    const where = $<HTMLSelectElement>('live-where');
    where.value = this.params.get('where') === 'device' ? 'device' : 'server';
    where.addEventListener('change', () => void this.switchWhere());
    if (this.trace) Object.assign(window, { framewiseTrace: this.trace, framewiseTimes: this.times });
    this.showWhere();
    conn.on((m) => this.onMessage(m));
    conn.whenReady(() => {
      const w = conn.welcome!;
      renderLegend($('live-legend'), w.model.classes);
      // Capture at the rate the bundle was trained at; the server resamples whatever arrives.
      $<HTMLInputElement>('live-fps').value ||= String(w.model.fps ?? w.limits.liveFps);
      // A new connection is a new session: zero state, indices from 0.
      this.nextIndex = 0;
      this.inFlight.clear();
    });
  }

  private get onDevice(): boolean {
    return $<HTMLSelectElement>('live-where').value === 'device';
  }

  private showWhere(): void {
    $('live-backend').textContent = this.onDevice ? (this.device ? `${this.device.backend} (this device)` : 'this device: loads at start') : 'server';
    $<HTMLSelectElement>('live-format').disabled = this.onDevice;
    $<HTMLInputElement>('live-fps').disabled = this.onDevice && !!this.device?.meta.fps;
    const url = new URL(location.href);
    if (this.onDevice) url.searchParams.set('where', 'device');
    else url.searchParams.delete('where');
    history.replaceState(null, '', url);
  }

  private async switchWhere(): Promise<void> {
    const running = this.stream !== undefined;
    this.stop();
    this.device?.dispose();
    this.device = undefined;
    this.reset();
    this.showWhere();
    if (running) await this.start();
  }

  /** Loads the chain on this device (again after a new model: the runner is made per start). */
  private async loadDevice(): Promise<boolean> {
    this.device?.dispose();
    this.device = undefined;
    this.message('Loading the model into this page…', true);
    try {
      const { DeviceRunner } = await import('./device-runner.ts');
      this.device = await DeviceRunner.load(this.params.get('backend') ?? undefined, (m) => this.message(`Loading: ${m}…`, true));
    } catch (err) {
      this.message(`The model could not run on this device: ${(err as Error).message}`);
      return false;
    }
    this.message('');
    renderLegend($('live-legend'), this.device.meta.classes);
    const fps = this.device.meta.fps;
    if (fps) $<HTMLInputElement>('live-fps').value = String(fps);
    this.showWhere();
    return true;
  }

  async start(): Promise<void> {
    this.message('');
    if (this.onDevice && !(await this.loadDevice())) return;
    try {
      this.stream = await openCamera();
    } catch (err) {
      this.message((err as Error).message);
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
    this.device?.reset();
    if (!this.onDevice) this.conn.sendJson({ type: 'reset' });
    this.nextIndex = 0;
    this.inFlight.clear();
    this.timeline.clear();
    this.setLabel('–', '');
  }

  private schedule(): void {
    clearInterval(this.timer);
    if (!this.stream) return;
    // On the device the bundle's rate is kept: the head was trained on frames that far apart.
    const fps = this.device?.meta.fps ?? Math.min(30, Math.max(1, Number($<HTMLInputElement>('live-fps').value) || 15));
    this.timer = window.setInterval(() => void this.tick(), 1000 / fps);
  }

  private async tick(): Promise<void> {
    if (this.onDevice) return this.tickDevice();
    const w = this.conn.welcome;
    if (!w || !this.conn.ready || this.sending || this.video.readyState < 2) return;
    if (this.inFlight.size >= w.limits.maxInFlight) {
      this.skipped += 1;
      return;
    }
    this.sending = true;
    try {
      const size = w.model.inputSize;
      const format = $<HTMLSelectElement>('live-format').value as FrameFormat;
      const captured = performance.timeOrigin + performance.now();
      const payload = await captureFrame(this.video, this.canvas, size, format, w.model.crop);
      const index = this.nextIndex++;
      this.inFlight.set(index, captured);
      this.conn.send(encodeFrame({ index, timestampMs: captured, format, width: size, height: size }, payload));
    } finally {
      this.sending = false;
    }
  }

  private async tickDevice(): Promise<void> {
    const d = this.device;
    if (!d || this.sending || this.video.readyState < 2) {
      if (this.sending) this.skipped += 1;
      return;
    }
    this.sending = true;
    try {
      const captured = performance.now();
      const rgb = await captureFrame(this.video, this.canvas, d.inputSize, 'rgb24', d.meta.crop);
      const index = this.nextIndex++;
      const r = await d.label(rgb, index, captured);
      if (this.device !== d) return;
      if (this.trace && this.trace.length < TRACE_FRAMES) this.trace.push({ index, rgb, probs: r.probs });
      const latencyMs = performance.now() - captured;
      if (this.trace && this.times.length < 10_000) this.times.push({ ms: r.ms, latencyMs });
      this.shown(r.label, r.score, index, Array.from(r.probs), latencyMs, captured);
      $('live-device-ms').textContent = `${r.ms.toFixed(1)} ms`;
    } catch (err) {
      this.message(`On-device labeling failed: ${(err as Error).message}`);
      this.stop();
    } finally {
      this.sending = false;
    }
  }

  /** A label on screen: readout, timeline, latency (capture to label) and rate. */
  private shown(label: string, score: number, index: number, probs: number[], latencyMs: number, timestampMs: number): void {
    const now = performance.now();
    this.latencies.push(latencyMs);
    if (this.latencies.length > 100) this.latencies.shift();
    this.labelTimes.push(now);
    while (this.labelTimes.length > 0 && this.labelTimes[0]! < now - 2000) this.labelTimes.shift();
    this.setLabel(label, `${(score * 100).toFixed(0)}%`);
    $('live-index').textContent = String(index);
    this.timeline.push(probs, timestampMs);
    this.redraw();
    this.metrics();
  }

  private onMessage(m: ServerMessage): void {
    // A taught model went live: on the device, load it and start again from a zero state.
    if (m.type === 'teach' && m.status === 'ready' && this.onDevice && this.stream) void this.switchWhere();
    if (!m.streamId.startsWith('live-') || this.onDevice) return;
    const now = performance.timeOrigin + performance.now();
    if (m.type === 'label') {
      this.inFlight.delete(m.index);
      this.shown(m.label, m.score, m.index, m.probs, now - m.timestampMs, m.timestampMs);
      return;
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

  private message(text: string, info = false): void {
    const el = $('live-message');
    el.textContent = text;
    el.hidden = text === '';
    el.classList.toggle('info', info);
  }
}
