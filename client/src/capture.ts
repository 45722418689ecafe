// The square model input from a <video>, made the way the bundle was trained: a center crop, or
// the whole frame fit with black bars ('pad'). One function for the live view (server or device)
// and the Teach view, so every path sees the same pixels.
import type { FrameFormat } from '../../server/protocol.ts';

export function drawModelInput(video: HTMLVideoElement, canvas: HTMLCanvasElement, size: number, crop: 'center' | 'pad'): CanvasRenderingContext2D {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (crop === 'pad') {
    const scale = size / Math.max(vw, vh);
    const [w, h] = [Math.round(vw * scale), Math.round(vh * scale)];
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, size, size);
    ctx.drawImage(video, 0, 0, vw, vh, (size - w) / 2, (size - h) / 2, w, h);
  } else {
    const side = Math.min(vw, vh);
    ctx.drawImage(video, (vw - side) / 2, (vh - side) / 2, side, side, 0, 0, size, size);
  }
  return ctx;
}

/** rgb24 (size*size*3 bytes) or a JPEG of the model input. */
export async function captureFrame(
  video: HTMLVideoElement,
  canvas: HTMLCanvasElement,
  size: number,
  format: FrameFormat,
  crop: 'center' | 'pad',
): Promise<Uint8Array> {
  const ctx = drawModelInput(video, canvas, size, crop);
  if (format === 'jpeg') {
    const blob = await new Promise<Blob | null>((ok) => canvas.toBlob(ok, 'image/jpeg', 0.9));
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

/** getUserMedia with messages a person can act on. */
export async function openCamera(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser gives no camera access here: open the page over https or on localhost.');
  try {
    return await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    const name = (err as DOMException)?.name;
    throw new Error(
      name === 'NotAllowedError' || name === 'SecurityError'
        ? 'Camera access was refused. Allow the camera for this page (the icon in the address bar) and press Start again.'
        : name === 'NotFoundError' || name === 'OverconstrainedError'
          ? 'No camera was found. Connect a webcam and press Start again.'
          : name === 'NotReadableError'
            ? 'The camera is in use by another application.'
            : `The camera could not be opened (${name ?? String(err)}).`,
    );
  }
}
