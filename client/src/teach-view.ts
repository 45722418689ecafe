// Teach view: name activities, record short clips of each from the webcam (a countdown, a visible
// recording state, a thumbnail per clip, delete), press Train. The server stores the clips as a
// folder-per-class dataset and trains in the background; progress (epoch, loss, accuracy, ETA,
// curves) arrives on this view's own socket. When the new bundle is live the socket reconnects (a
// new session: the new model, a zero state) and the view labels the webcam with it.
// Training options other than the defaults of `framewise train` come from the URL
// (?epochs=8&hidden=32&augCopies=0&valSplit=0&folds=0&inputNorm=0&patience=0&seed=1).
import { encodeFrame, type ServerMessage, type TeachMessage } from '../../server/protocol.ts';
import { captureFrame, drawModelInput, openCamera } from './capture.ts';
import { classColor } from './charts.ts';
import { Connection } from './connection.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** Countdown before a recording, and the recording's length: about 3 s per click. */
const COUNTDOWN_MS = 1000;
const RECORD_MS = 2000;
const TRAIN_OPTIONS = ['epochs', 'hidden', 'augCopies', 'valSplit', 'folds', 'inputNorm', 'patience', 'seed'];

interface ClipInfo {
  id: string;
  bytes: number;
  url: string;
}
interface TeachClass {
  name: string;
  clips: ClipInfo[];
}
interface BundleSummary {
  id: string;
  createdAt: string;
  classes: string[];
  accuracy: number | null;
  current: boolean;
  downloadUrl: string;
}
interface Overview {
  classes: TeachClass[];
  training: TeachMessage | null;
  bundles: BundleSummary[];
  limits: { maxClasses: number; maxClipsPerClass: number; maxClipBytes: number };
}

export class TeachView {
  private conn: Connection | undefined;
  private stream: MediaStream | undefined;
  private readonly video = $<HTMLVideoElement>('teach-video');
  private readonly canvas = document.createElement('canvas');
  private classes: TeachClass[] = [];
  private recording = false;
  private training = false;
  /** A still of each clip recorded in this page, shown until the clip's own video has a frame. */
  private readonly posters = new Map<string, string>();
  private timer: number | undefined;
  private nextIndex = 0;
  private inFlight = 0;

  constructor() {
    $('teach-camera').addEventListener('click', () => void this.camera());
    $('teach-add-class').addEventListener('click', () => void this.addClass());
    $<HTMLInputElement>('teach-class-name').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') void this.addClass();
    });
    $('teach-train').addEventListener('click', () => void this.train());
  }

  /** The first time the view is shown: its socket and the stored activities. */
  show(): void {
    if (this.conn) return;
    this.conn = new Connection('teach');
    this.conn.on((m) => this.onMessage(m));
    this.conn.whenReady(() => {
      this.nextIndex = 0;
      this.inFlight = 0;
      this.setLabel('–', '');
    });
    void this.refresh();
  }

  private async refresh(): Promise<void> {
    const o = (await this.api('GET', '/api/teach')) as Overview | undefined;
    if (!o) return;
    this.classes = o.classes;
    this.renderClasses();
    this.renderBundles(o.bundles);
    if (o.training) this.onTeach(o.training, false);
    else if (o.bundles.some((b) => b.current)) this.status(`model ${o.bundles.find((b) => b.current)!.classes.join(', ')} · ready`);
    if (o.bundles.some((b) => b.current)) this.startLabeling();
  }

  private async camera(): Promise<boolean> {
    if (this.stream) return true;
    try {
      this.stream = await openCamera();
    } catch (err) {
      this.message((err as Error).message);
      return false;
    }
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => undefined);
    $<HTMLButtonElement>('teach-camera').disabled = true;
    return true;
  }

  private async addClass(): Promise<void> {
    const input = $<HTMLInputElement>('teach-class-name');
    const name = input.value.trim();
    if (!name) return;
    const r = (await this.api('POST', '/api/teach/classes', JSON.stringify({ name }))) as { classes: TeachClass[] } | undefined;
    if (!r) return;
    input.value = '';
    this.classes = r.classes;
    this.renderClasses();
  }

  /** One click: countdown, then a fixed-length recording, uploaded as one clip of `name`. */
  private async record(name: string): Promise<void> {
    if (this.recording || this.training) return;
    if (!(await this.camera())) return;
    if (typeof MediaRecorder === 'undefined') {
      this.message('This browser cannot record video (no MediaRecorder).');
      return;
    }
    this.recording = true;
    this.renderClasses();
    const overlay = $('teach-overlay');
    try {
      overlay.hidden = false;
      overlay.className = 'overlay';
      for (let n = 3; n >= 1; n--) {
        overlay.textContent = String(n);
        await sleep(COUNTDOWN_MS / 3);
      }
      const mimeType = ['video/webm;codecs=vp8', 'video/webm', 'video/mp4'].find((t) => MediaRecorder.isTypeSupported(t));
      const rec = new MediaRecorder(this.stream!, { ...(mimeType ? { mimeType } : {}), videoBitsPerSecond: 1_500_000 });
      const chunks: Blob[] = [];
      rec.ondataavailable = (e) => e.data.size > 0 && chunks.push(e.data);
      const stopped = new Promise<void>((ok) => (rec.onstop = () => ok()));
      overlay.className = 'overlay recording';
      overlay.textContent = `● recording “${name}”`;
      rec.start();
      const poster = this.still();
      await sleep(RECORD_MS);
      rec.stop();
      await stopped;
      overlay.hidden = true;
      const blob = new Blob(chunks, { type: rec.mimeType || mimeType || 'video/webm' });
      const r = (await this.api('POST', `/api/teach/clips?class=${encodeURIComponent(name)}`, blob, blob.type)) as
        { clip: ClipInfo; classes: TeachClass[] } | undefined;
      if (r) {
        this.posters.set(r.clip.id, poster);
        this.classes = r.classes;
      }
    } finally {
      overlay.hidden = true;
      this.recording = false;
      this.renderClasses();
    }
  }

  private still(): string {
    drawModelInput(this.video, this.canvas, 96, 'center');
    return this.canvas.toDataURL('image/jpeg', 0.7);
  }

  private async train(): Promise<void> {
    const params = new URLSearchParams(location.search);
    const options: Record<string, number> = {};
    for (const k of TRAIN_OPTIONS) if (params.has(k)) options[k] = Number(params.get(k));
    const r = (await this.api('POST', '/api/teach/train', JSON.stringify(options))) as { training: TeachMessage } | undefined;
    if (r) this.onTeach(r.training, false);
  }

  private onMessage(m: ServerMessage): void {
    if (m.type === 'teach') this.onTeach(m, true);
    else if (m.type === 'label' && m.streamId.startsWith('live-')) {
      this.inFlight = Math.max(0, this.inFlight - 1);
      this.setLabel(m.label, `${(m.score * 100).toFixed(0)}%`);
    } else if (m.type === 'dropped' || (m.type === 'error' && m.streamId.startsWith('live-'))) {
      this.inFlight = Math.max(0, this.inFlight - 1);
      if (m.type === 'error' && m.code !== 'E_NO_MODEL') console.warn(`framewise: ${m.code}: ${m.message}`);
    }
  }

  private onTeach(m: TeachMessage, live: boolean): void {
    this.training = m.status === 'preparing' || m.status === 'training';
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    const last = m.history[m.history.length - 1];
    if (m.status === 'preparing') this.status(`${m.runId}: preparing (embedding the clips)…`);
    else if (m.status === 'training') {
      this.status(
        last
          ? `${m.runId}: epoch ${m.epoch}/${m.epochs} · loss ${last.trainLoss.toFixed(3)} · accuracy ${pct(last.trainAccuracy)}` +
              (last.valAccuracy !== null ? ` (held out ${pct(last.valAccuracy)})` : '') +
              (m.etaSeconds !== null ? ` · ETA ${m.etaSeconds} s` : '')
          : `${m.runId}: training…`,
      );
    } else if (m.status === 'failed') {
      this.status(`${m.runId}: failed: ${m.error?.message ?? 'unknown error'} (the previous model stays in use)`);
    } else if (m.status === 'ready') {
      this.status(`${m.runId}: model ${m.model?.classes.join(', ') ?? ''} · ready`);
      if (live) {
        // A new session on the new model (zero state), then label the webcam with it.
        this.conn?.reconnect();
        this.startLabeling();
        void this.refresh();
      }
    }
    this.drawCurves(m);
    this.renderClasses();
  }

  /** Labels the webcam through this view's session, at the model's rate, at most 2 frames unanswered. */
  private startLabeling(): void {
    if (this.timer !== undefined) return;
    void this.camera().then((ok) => {
      if (!ok || this.timer !== undefined) return;
      this.timer = window.setInterval(() => void this.tick(), 100);
    });
  }

  private async tick(): Promise<void> {
    const w = this.conn?.welcome;
    if (!w || !this.conn!.ready || w.model.classes.length === 0 || this.video.readyState < 2 || this.inFlight >= w.limits.maxInFlight) return;
    const fps = w.model.fps ?? 10;
    const now = performance.timeOrigin + performance.now();
    if (now - this.lastSent < 1000 / fps - 5) return;
    this.lastSent = now;
    const size = w.model.inputSize;
    const rgb = await captureFrame(this.video, this.canvas, size, 'rgb24', w.model.crop);
    this.inFlight += 1;
    this.conn!.send(encodeFrame({ index: this.nextIndex++, timestampMs: now, format: 'rgb24', width: size, height: size }, rgb));
  }
  private lastSent = 0;

  private renderClasses(): void {
    const host = $('teach-classes');
    const busy = this.recording || this.training;
    host.replaceChildren(
      ...this.classes.map((c, i) => {
        const card = document.createElement('div');
        card.className = 'teach-class';
        card.dataset.class = c.name;
        const head = document.createElement('header');
        const h = document.createElement('h3');
        h.textContent = c.name;
        h.style.color = classColor(i);
        const rec = button(`Record (${(COUNTDOWN_MS + RECORD_MS) / 1000} s)`, () => void this.record(c.name));
        rec.dataset.testid = 'teach-record';
        rec.dataset.class = c.name;
        rec.disabled = busy;
        const count = document.createElement('span');
        count.className = 'muted';
        count.textContent = `${c.clips.length} clip${c.clips.length === 1 ? '' : 's'}`;
        const del = button('Delete activity', () => void this.removeClass(c.name));
        del.disabled = busy;
        head.append(h, rec, count, del);
        const clips = document.createElement('div');
        clips.className = 'clips';
        clips.append(
          ...c.clips.map((clip) => {
            const box = document.createElement('div');
            box.className = 'clip';
            const v = document.createElement('video');
            v.muted = true;
            v.preload = 'metadata';
            v.src = clip.url;
            const poster = this.posters.get(clip.id);
            if (poster) v.poster = poster;
            v.title = `${clip.id} (${(clip.bytes / 1024).toFixed(0)} kB): hover to play`;
            v.addEventListener('mouseenter', () => void v.play().catch(() => undefined));
            v.addEventListener('mouseleave', () => v.pause());
            const x = button('×', () => void this.removeClip(c.name, clip.id));
            x.title = 'delete this clip';
            x.disabled = busy;
            box.append(v, x);
            return box;
          }),
        );
        card.append(head, clips);
        return card;
      }),
    );
    const ready = this.classes.filter((c) => c.clips.length > 0).length >= 2;
    $<HTMLButtonElement>('teach-train').disabled = busy || !ready;
    $<HTMLButtonElement>('teach-train').title = ready ? '' : 'record clips of at least two activities';
  }

  private renderBundles(bundles: BundleSummary[]): void {
    const host = $('teach-bundles');
    if (bundles.length === 0) {
      host.textContent = 'none yet';
      return;
    }
    host.replaceChildren(
      ...bundles.map((b) => {
        const row = document.createElement('div');
        const text = document.createElement('span');
        text.textContent =
          `${b.id} · ${b.classes.join(', ')} · ${new Date(b.createdAt).toLocaleString()}` +
          (b.accuracy !== null ? ` · frame accuracy ${(b.accuracy * 100).toFixed(0)}%` : '');
        const link = document.createElement('a');
        link.href = b.downloadUrl;
        link.textContent = 'download';
        link.download = `${b.id}.tar`;
        row.append(text, link);
        if (b.current) {
          const cur = document.createElement('strong');
          cur.textContent = 'in use';
          row.append(cur);
        } else {
          row.append(button('Use this one', () => void this.load(b.id)));
        }
        return row;
      }),
    );
  }

  private async load(id: string): Promise<void> {
    const r = (await this.api('POST', `/api/teach/bundles/${id}/load`)) as { model: { classes: string[] }; bundles: BundleSummary[] } | undefined;
    if (!r) return;
    this.renderBundles(r.bundles);
    this.status(`${id}: model ${r.model.classes.join(', ')} · ready`);
    this.conn?.reconnect();
    this.startLabeling();
  }

  private async removeClip(name: string, id: string): Promise<void> {
    const r = (await this.api('DELETE', `/api/teach/clips/${encodeURIComponent(name)}/${id}`)) as { classes: TeachClass[] } | undefined;
    if (r) this.classes = r.classes;
    this.renderClasses();
  }

  private async removeClass(name: string): Promise<void> {
    const r = (await this.api('DELETE', `/api/teach/classes/${encodeURIComponent(name)}`)) as { classes: TeachClass[] } | undefined;
    if (r) this.classes = r.classes;
    this.renderClasses();
  }

  private drawCurves(m: TeachMessage): void {
    const cv = $<HTMLCanvasElement>('teach-curves');
    const ctx = cv.getContext('2d')!;
    const { width: W, height: H } = cv;
    ctx.clearRect(0, 0, W, H);
    const h = m.history;
    if (h.length === 0) return;
    const n = Math.max(2, m.epochs);
    const maxLoss = Math.max(...h.map((e) => Math.max(e.trainLoss, e.valLoss ?? 0)), 1e-6);
    const line = (values: (number | null)[], color: string, scale: number) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      values.forEach((v, i) => {
        if (v === null) return;
        const x = 6 + (i / (n - 1)) * (W - 12);
        const y = H - 6 - (v / scale) * (H - 12);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line(
      h.map((e) => e.trainLoss),
      '#ff9f43',
      maxLoss,
    );
    line(
      h.map((e) => e.trainAccuracy),
      '#7bd88f',
      1,
    );
    ctx.fillStyle = '#ff9f43';
    ctx.font = '11px system-ui';
    ctx.fillText('loss', 8, 14);
    ctx.fillStyle = '#7bd88f';
    ctx.fillText(`accuracy · epoch ${m.epoch}/${m.epochs}`, 40, 14);
  }

  private setLabel(label: string, score: string): void {
    const el = $('teach-label');
    el.textContent = label;
    el.dataset.label = label === '–' ? '' : label;
    $('teach-score').textContent = score;
  }

  private status(text: string): void {
    $('teach-status').textContent = text;
  }

  private message(text: string): void {
    const el = $('teach-message');
    el.textContent = text;
    el.hidden = text === '';
  }

  /** fetch with the server's {code, message} errors shown in the view; undefined on error. */
  private async api(method: string, url: string, body?: BodyInit, type = 'application/json'): Promise<unknown> {
    try {
      const res = await fetch(url, { method, ...(body !== undefined ? { body, headers: { 'Content-Type': type } } : {}) });
      const out = (await res.json()) as { code?: string; message?: string };
      if (!res.ok) {
        this.message(out.message ?? `${method} ${url}: HTTP ${res.status}`);
        return undefined;
      }
      this.message('');
      return out;
    } catch (err) {
      this.message(`${method} ${url} failed: ${(err as Error).message}`);
      return undefined;
    }
  }
}

function button(text: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}
