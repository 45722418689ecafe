// Live frames arrive at whatever rate the camera and the network give; the stateful head must see
// the tempo it was trained at. This applies the rule of ffmpeg's fps filter (the one offline
// decoding uses) to frames as they arrive, by their timestamps: each frame's time from the first
// frame is rounded to the nearest tick of the target rate (ties away from zero, ffmpeg's default),
// and each tick takes the latest frame at or before it. A frame that is not the latest of its
// tick is skipped; ticks with no frame of their own repeat the frame before them.
//
// Whether a frame is the latest of its tick is known when the next frame arrives, or once its
// tick is over: `flush()` decides it then (the caller arms a timer with `msUntilDecided`). A frame
// of a tick that was already decided arrives too late and is skipped.

export interface FpsFrame<F> {
  frame: F;
  /** Ticks before this frame's own that no frame took: the head steps the previous frame again for each. */
  gap: number;
}

export interface FpsDecision<F> {
  ready?: FpsFrame<F>;
  /** The frame skipped: a newer one holds its tick, or its tick was already decided. */
  skipped?: F;
}

export class FpsResampler<F extends { timestampMs: number }> {
  private held: { frame: F; tick: number } | undefined;
  private originMs: number | undefined;
  /** The first tick no frame has been decided for. */
  private nextTick = 0;

  /** `fps` null: every frame passes through as it comes (the bundle runs at the source's rate). */
  constructor(private readonly fps: number | null) {}

  push(frame: F): FpsDecision<F> {
    if (this.fps === null) return { ready: { frame, gap: 0 } };
    this.originMs ??= frame.timestampMs;
    const exact = ((frame.timestampMs - this.originMs) * this.fps) / 1000;
    const tick = Math.sign(exact) * Math.round(Math.abs(exact));
    if (tick < this.nextTick) return { skipped: frame };
    const before = this.held;
    this.held = { frame, tick };
    if (!before) return {};
    if (before.tick === tick) return { skipped: before.frame };
    return { ready: this.decide(before) };
  }

  /** Decides the held frame now (its tick is over), if there is one. */
  flush(): FpsFrame<F> | undefined {
    const held = this.held;
    this.held = undefined;
    return held && this.decide(held);
  }

  /** Stream time (ms) from the held frame to the end of its tick: after that no later frame can take the tick. */
  msUntilDecided(): number | undefined {
    if (!this.held || this.fps === null) return undefined;
    const tickEnd = this.originMs! + ((this.held.tick + 0.5) * 1000) / this.fps;
    return Math.max(0, tickEnd - this.held.frame.timestampMs);
  }

  /** Starts over (a reset stream); returns the held frame, which will never be labeled. */
  reset(): F | undefined {
    const held = this.held?.frame;
    this.held = undefined;
    this.originMs = undefined;
    this.nextTick = 0;
    return held;
  }

  private decide(h: { frame: F; tick: number }): FpsFrame<F> {
    const gap = h.tick - this.nextTick;
    this.nextTick = h.tick + 1;
    return { frame: h.frame, gap };
  }
}
