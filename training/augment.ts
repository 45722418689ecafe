// Spatial data augmentation, done by ffmpeg at decode time (the ResNet recipe):
// training picks a random short side L, resizes, takes a random crop of the model's size and
// flips at random; evaluation uses the deterministic center crop, and test-time augmentation
// averages a fixed set of views (4 corners + center, each with its mirror image).
// A view is a list of ffmpeg filters run before decode's own scale/crop, which then is a no-op.

export interface View {
  /** Short side in pixels after resizing (>= the crop size). */
  shortSide: number;
  /** Crop position as a fraction of the free room: 0 = left/top, 0.5 = center, 1 = right/bottom. */
  fx: number;
  fy: number;
  flip: boolean;
}

/** Short-side range for training crops. Narrower than ResNet's [256, 480]: activities fill the frame. */
export const TRAIN_SHORT_SIDE: [number, number] = [240, 320];

export function randomView(rand: () => number, range: [number, number] = TRAIN_SHORT_SIDE): View {
  return {
    shortSide: Math.round(range[0] + rand() * (range[1] - range[0])),
    fx: rand(),
    fy: rand(),
    flip: rand() < 0.5,
  };
}

export function viewFilters(v: View, size: number): string[] {
  const L = Math.max(size, Math.round(v.shortSide));
  // -2 keeps the aspect ratio with an even length, as the encoders downstream like; 'area' as in
  // decode's own scaling, so augmented views and the center view are resized alike.
  const filters = [
    `scale='if(lt(iw,ih),${L},-2)':'if(lt(iw,ih),-2,${L})':flags=area`,
    `crop=${size}:${size}:(iw-${size})*${v.fx.toFixed(4)}:(ih-${size})*${v.fy.toFixed(4)}`,
  ];
  if (v.flip) filters.push('hflip');
  return filters;
}

/** Test-time views at one scale: the four corners and the center, each also mirrored (10 crops). */
export function ttaViews(size: number, shortSide = Math.round((size * 256) / 224)): View[] {
  const spots: [number, number][] = [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
    [0.5, 0.5],
  ];
  return spots.flatMap(([fx, fy]) => [false, true].map((flip) => ({ shortSide, fx, fy, flip })));
}

export function describeView(v: View): string {
  return `L${v.shortSide}@${v.fx.toFixed(2)},${v.fy.toFixed(2)}${v.flip ? ',flip' : ''}`;
}
