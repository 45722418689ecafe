// Debian's Chromium, driven by playwright-core (which downloads no browser), with a fake webcam
// that plays a .y4m file: the one launch every browser test shares.
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless Chromium whose webcam is `camera` (a .y4m); `extraArgs` add to the usual flags. */
export function launchWithCamera(camera: string, extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`,
      ...extraArgs,
      // No background traffic: the machine has no network, and each refused connection costs time.
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}
