// File view: pick a video from the server's media folder (or upload one), follow the job's
// progress and its labels as they are computed, then play the video with the current label kept
// in sync with the displayed frame (requestVideoFrameCallback gives the frame's media time), a
// seekable segment strip colored by class, and download links.
import type { JobInfo, ServerMessage } from '../../server/protocol.ts';
import { labelColor, renderLegend, SegmentStrip } from './charts.ts';
import type { Connection } from './connection.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface FrameRow {
  timestampMs: number;
  label: string;
  score: number;
}

export class FileView {
  private job: JobInfo | undefined;
  private frames: FrameRow[] = [];
  private readonly video = $<HTMLVideoElement>('file-video');
  private readonly strip: SegmentStrip;
  private following = false;

  constructor(private readonly conn: Connection) {
    this.strip = new SegmentStrip(
      $<HTMLCanvasElement>('file-timeline'),
      () => conn.welcome?.model.classes ?? [],
      (ms) => {
        if (this.video.src) this.video.currentTime = ms / 1000;
      },
    );
    $('file-label-media').addEventListener('click', () => void this.labelMedia());
    $<HTMLInputElement>('file-upload').addEventListener('change', () => void this.upload());
    conn.on((m) => this.onMessage(m));
    conn.whenReady(() => {
      renderLegend($('file-legend'), conn.welcome!.model.classes);
      if (this.job) conn.sendJson({ type: 'subscribe', jobId: this.job.id });
    });
    this.video.addEventListener('loadedmetadata', () => {
      this.strip.setDuration(this.video.duration * 1000);
      this.strip.draw();
    });
    this.video.addEventListener('seeked', () => this.show(this.video.currentTime * 1000));
    this.video.addEventListener('error', () => {
      if (!this.video.getAttribute('src')) return;
      const e = this.video.error;
      this.message(
        `This browser cannot play ${this.job?.name ?? 'the video'} (${e?.message || `media error ${e?.code ?? ''}`}); the labels and downloads are still valid.`,
      );
    });
    void this.loadMediaList();
  }

  async loadMediaList(): Promise<void> {
    const select = $<HTMLSelectElement>('file-media');
    try {
      const r = (await (await fetch('/api/media')).json()) as { files: string[] };
      select.replaceChildren(
        new Option('choose a video…', ''),
        ...r.files.map((f) => {
          const o = document.createElement('option');
          o.value = f;
          o.textContent = f;
          return o;
        }),
      );
      $<HTMLButtonElement>('file-label-media').disabled = r.files.length === 0;
      if (r.files.length === 0) select.replaceChildren(new Option('(no --media folder or no videos)', ''));
    } catch {
      this.message('Could not list the server videos.');
    }
  }

  private async labelMedia(): Promise<void> {
    const path = $<HTMLSelectElement>('file-media').value;
    if (!path) {
      this.message('Choose a server video first.');
      return;
    }
    $<HTMLInputElement>('file-upload').value = '';
    await this.submit(fetch('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ path }) }));
  }

  private async upload(): Promise<void> {
    const file = $<HTMLInputElement>('file-upload').files?.[0];
    if (!file) return;
    // The upload is what is shown now, not the server video picked before.
    $<HTMLSelectElement>('file-media').value = '';
    await this.submit(fetch(`/api/jobs?name=${encodeURIComponent(file.name)}`, { method: 'POST', body: file }));
  }

  private async submit(request: Promise<Response>): Promise<void> {
    this.message('');
    let body: { job?: JobInfo; code?: string; message?: string };
    try {
      const res = await request;
      body = (await res.json()) as typeof body;
      if (!res.ok || !body.job) throw new Error(`${body.message ?? res.statusText} [${body.code ?? res.status}]`);
    } catch (err) {
      this.message(`The video could not be labeled: ${(err as Error).message}`);
      return;
    }
    if (this.job) this.conn.sendJson({ type: 'unsubscribe', jobId: this.job.id });
    this.job = body.job;
    this.frames = [];
    this.strip.reset(0);
    this.setLabel('–', '');
    $('file-downloads').replaceChildren();
    this.video.removeAttribute('src');
    this.progress(this.job);
    this.conn.sendJson({ type: 'subscribe', jobId: this.job.id });
  }

  private onMessage(m: ServerMessage): void {
    if (!this.job || m.streamId !== `job-${this.job.id}`) return;
    if (m.type === 'label') {
      this.strip.addFrame(m.timestampMs, m.label);
      this.strip.draw();
    } else if (m.type === 'job') {
      const before = this.job.status;
      this.job = m.job;
      this.progress(m.job);
      if (m.job.status === 'done' && before !== 'done') void this.ready(m.job);
      else if (m.job.status === 'done' && m.job.playback?.state === 'ready' && !this.video.getAttribute('src')) this.play(m.job);
      if (m.job.status === 'failed') this.message(`Labeling failed: ${m.job.error?.message ?? 'unknown error'} [${m.job.error?.code ?? ''}]`);
    } else if (m.type === 'error') {
      this.message(`${m.message} [${m.code}]`);
    }
  }

  private progress(job: JobInfo): void {
    $('file-progress-row').hidden = false;
    const p = $<HTMLProgressElement>('file-progress');
    const frac = job.status === 'done' ? 1 : job.framesTotal > 0 ? Math.min(1, job.framesDone / job.framesTotal) : 0;
    p.value = frac;
    const pb = job.playback;
    $('file-progress-text').textContent =
      job.status !== 'done'
        ? `${job.name}: ${job.status} ${job.framesDone}${job.framesTotal ? ` / ~${job.framesTotal}` : ''} frames`
        : pb?.state === 'converting'
          ? `${job.name}: ${job.framesDone} frames labeled; ${pb.reason}, so ffmpeg is converting it to H.264 for playback: ${Math.round(pb.progress * 100)}%`
          : `${job.name}: ${job.framesDone} frames labeled${pb?.state === 'ready' ? ' (playing an H.264 copy)' : ''}`;
    if (pb?.state === 'converting') p.value = pb.progress;
    if (pb?.state === 'failed')
      this.message(`The labels are ready, but the video cannot be played here: ${pb.reason}, and converting it failed: ${pb.error ?? 'unknown error'}`);
  }

  /** The job is done: load every frame's label, show segments and links, play the video. */
  private async ready(job: JobInfo): Promise<void> {
    if (job.files.jsonl) {
      const text = await (await fetch(job.files.jsonl)).text();
      this.frames = text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as FrameRow);
    }
    this.strip.setSegments(job.segments ?? []);
    const links = $('file-downloads');
    const names: Record<string, string> = { jsonl: 'frames (JSONL)', vtt: 'subtitles (WebVTT)', segments: 'segments (ActivityNet JSON)', csv: 'frames (CSV)' };
    links.replaceChildren(
      ...Object.entries(job.files).map(([kind, url]) => {
        const a = document.createElement('a');
        a.href = url;
        a.textContent = names[kind] ?? kind;
        a.download = '';
        a.id = `download-${kind}`;
        return a;
      }),
    );
    if (job.playback?.state === 'converting' || job.playback?.state === 'failed') {
      this.show(0);
      return;
    }
    this.play(job);
  }

  private play(job: JobInfo): void {
    this.video.src = job.videoUrl;
    this.follow();
    this.show(0);
  }

  /** Keeps the label in step with the frame on screen. */
  private follow(): void {
    const v = this.video;
    // One callback chain per video element, whatever the number of jobs shown.
    if (this.following) return;
    this.following = true;
    if ('requestVideoFrameCallback' in v) {
      const step = (_now: number, meta: VideoFrameCallbackMetadata) => {
        this.show(meta.mediaTime * 1000);
        v.requestVideoFrameCallback(step);
      };
      v.requestVideoFrameCallback(step);
    } else {
      // Browsers without it (older Firefox): the nearest animation frame is close enough.
      const tick = () => {
        this.show((v as HTMLVideoElement).currentTime * 1000);
        requestAnimationFrame(tick);
      };
      tick();
    }
  }

  /** The label of the last labeled frame at or before `ms`. */
  private show(ms: number): void {
    let lo = 0;
    let hi = this.frames.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.frames[mid]!.timestampMs <= ms + 1) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    const f = this.frames[found];
    if (f) this.setLabel(f.label, `${(f.score * 100).toFixed(0)}%`);
    $('file-time').textContent = `${(ms / 1000).toFixed(2)} s`;
    $('file-time').dataset.ms = String(Math.round(ms));
    this.strip.setPlayhead(ms);
    this.strip.draw();
  }

  private setLabel(label: string, score: string): void {
    const el = $('file-label');
    el.textContent = label;
    el.dataset.label = label === '–' ? '' : label;
    el.style.color = labelColor(label, this.conn.welcome?.model.classes ?? []);
    $('file-score').textContent = score;
  }

  private message(text: string): void {
    const el = $('file-message');
    el.textContent = text;
    el.hidden = text === '';
  }
}
