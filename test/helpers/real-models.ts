// The shared, read-only inputs of model tests: the MobileNet weights (env FRAMEWISE_MODELS, else
// the shared models folder beside the repo) and the ImageNet photos, decoded to rgb24 by ffmpeg.
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Absolute models folder; a relative FRAMEWISE_MODELS is taken from the repo root, as CI sets it. */
export const MODELS_DIR = resolve(REPO_ROOT, process.env.FRAMEWISE_MODELS || '../shared/models');

export const IMAGES_DIR = resolve(REPO_ROOT, '../shared/data/images');

/**
 * Decodes a photo to a size x size rgb24 frame the way framewise's default crop does: scale the
 * short side to `size`, then take the centre.
 */
export function loadPhotoRgb(name: string, size = 224): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const path = resolve(IMAGES_DIR, name);
  const vf = `scale=${size}:${size}:force_original_aspect_ratio=increase:flags=bilinear,crop=${size}:${size}`;
  return new Promise((ok, fail) => {
    const ff = spawn('ffmpeg', ['-v', 'error', '-i', path, '-vf', vf, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    ff.stdout.on('data', (b: Buffer) => out.push(b));
    ff.stderr.on('data', (b: Buffer) => (err += b));
    ff.on('error', fail);
    ff.on('close', (code) => {
      const buf = Buffer.concat(out);
      if (code !== 0 || buf.length !== size * size * 3) {
        fail(new Error(`ffmpeg could not decode ${path} (exit ${code}, ${buf.length} bytes): ${err}`));
      } else {
        ok({ rgb: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), width: size, height: size });
      }
    });
  });
}
