// A one-line progress display on stderr (frames, fps, ETA per running item), drawn only when
// stderr is a terminal so that logs and pipes stay clean.

export class Progress {
  private readonly tty: boolean;
  private readonly running = new Map<string, { done: number; total?: number; started: number }>();
  private finished = 0;
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly items: number,
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  update(name: string, done: number, total?: number): void {
    const r = this.running.get(name) ?? { done: 0, total, started: Date.now() };
    r.done = done;
    r.total = total;
    this.running.set(name, r);
    this.draw();
  }

  done(name: string): void {
    this.running.delete(name);
    this.finished++;
    this.draw(true);
  }

  clear(): void {
    if (this.tty) this.out.write('\r\x1b[K');
  }

  /** Text of the line, exported for tests and for non-TTY summaries. */
  line(now = Date.now()): string {
    const parts = [...this.running].map(([name, r]) => {
      const secs = Math.max(1e-3, (now - r.started) / 1000);
      const fps = r.done / secs;
      const eta = r.total && fps > 0 ? ` ETA ${Math.max(0, Math.round((r.total - r.done) / fps))}s` : '';
      const of = r.total ? `/${r.total}` : '';
      return `${name} ${r.done}${of} frames ${fps.toFixed(1)} fps${eta}`;
    });
    return `[${this.finished}/${this.items}] ${parts.join(' | ')}`;
  }

  private draw(force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const cols = (this.out as NodeJS.WriteStream).columns ?? 120;
    this.out.write(`\r\x1b[K${this.line(now).slice(0, cols - 1)}`);
  }
}
