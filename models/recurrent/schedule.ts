// Learning-rate schedules as plain functions of the optimizer step (0-based), so a resumed run
// continues exactly where it stopped.

export interface ScheduleOptions {
  /** Peak learning rate, reached at the end of the warm-up. */
  learningRate: number;
  /** Steps of linear warm-up from learningRate / warmupSteps; 0 = none. */
  warmupSteps?: number;
  /** Total steps of the run; needed for 'cosine' and 'linear' decay. */
  totalSteps?: number;
  /** After warm-up: 'none' (constant), 'cosine' or 'linear' down to minLearningRate at totalSteps. */
  decay?: 'none' | 'cosine' | 'linear';
  /** Floor of the decay; default learningRate / 100. */
  minLearningRate?: number;
}

export type LearningRateSchedule = (step: number) => number;

export function learningRateSchedule(o: ScheduleOptions): LearningRateSchedule {
  const warm = Math.max(0, Math.floor(o.warmupSteps ?? 0));
  const decay = o.decay ?? 'none';
  const total = o.totalSteps ?? 0;
  const min = o.minLearningRate ?? o.learningRate / 100;
  return (step) => {
    if (step < warm) return (o.learningRate * (step + 1)) / warm;
    if (decay === 'none' || total <= warm) return o.learningRate;
    const progress = Math.min(1, (step - warm) / Math.max(1, total - warm));
    const shape = decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
    return min + (o.learningRate - min) * shape;
  };
}
