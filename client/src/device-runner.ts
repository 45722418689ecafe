// The whole chain on this device: tfjs picks WebGPU, WebGL or WASM (whichever initialises), the
// same MobileNet graph model the server runs (its files served by `framewise serve`), the bundle's
// head built by the same browser-safe code as the server's (bundle-meta.ts, head-math.ts: input
// normalisation and recurrent state included), and the same argmax label. No frame leaves the page.
// Loaded on demand (a separate chunk), so the server-side views never download tfjs.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import * as mobilenet from '@tensorflow-models/mobilenet';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { FrameLabel } from '../../core/types.ts';
import { headFromLayersModel, parseMeta, type BundleMeta } from '../../models/recurrent/bundle-meta.ts';
import type { RecurrentHead } from '../../models/recurrent/head-math.ts';
import { MotionStream, withMotion } from '../../models/motion.ts';
import type { RecurrentState } from '../../models/recurrent/state.ts';
import { toFrameLabel } from '../../pipeline/frame-label.ts';

/** GET /api/device (server/device-routes.ts). */
interface DeviceInfo {
  embedder: { id: string; version: 1 | 2; alpha: number; inputSize: number; dim: number; inputRange: [number, number] | null; modelUrl: string };
  bundle: { modelUrl: string; metaUrl: string } | null;
  wasmUrl: string;
}

export const DEVICE_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;

export interface DeviceResult extends FrameLabel {
  /** Embed + head on this device, ms. */
  ms: number;
}

export class DeviceRunner {
  private state: RecurrentState;
  private disposed = false;
  /** The motion stream, when the bundle's head takes it: the server's code on the same pixels. */
  private readonly motion: MotionStream | undefined;

  private constructor(
    readonly backend: string,
    readonly meta: BundleMeta,
    private readonly net: mobilenet.MobileNet,
    private readonly head: RecurrentHead,
    readonly inputSize: number,
  ) {
    this.state = head.zeroState();
    this.motion = meta.features === 'appearance+motion' ? new MotionStream() : undefined;
  }

  /**
   * Picks a backend (`prefer`: only that one), loads the embedder and the current bundle.
   * E_NO_MODEL when the server has no model yet.
   */
  static async load(prefer?: string, onProgress: (m: string) => void = () => {}): Promise<DeviceRunner> {
    const info = (await getJson('/api/device')) as DeviceInfo;
    if (!info.bundle) throw new FramewiseError(ErrorCodes.NO_MODEL, 'the server has no model yet: teach one first');
    setWasmPaths(new URL(info.wasmUrl, location.href).href);
    const backend = await pickBackend(prefer);
    onProgress(`backend ${backend}; loading ${info.embedder.id}`);
    const e = info.embedder;
    const net = await mobilenet.load({
      version: e.version,
      alpha: e.alpha as mobilenet.MobileNetAlpha,
      modelUrl: new URL(e.modelUrl, location.href).href,
      ...(e.inputRange ? { inputRange: e.inputRange } : {}),
    });
    onProgress('loading the bundle');
    const invalid = (what: string, cause?: unknown) => new FramewiseError(ErrorCodes.MODEL_INVALID, `bundle: ${what}`, { cause });
    const meta = parseMeta(await getJson(info.bundle.metaUrl), invalid);
    const layers = await tf.loadLayersModel(new URL(info.bundle.modelUrl, location.href).href);
    let head: RecurrentHead;
    try {
      head = headFromLayersModel(layers, meta, invalid);
    } finally {
      layers.dispose();
    }
    const runner = new DeviceRunner(backend, meta, net, head, e.inputSize);
    // Warm-up on a black frame keeps shader compilation out of the first frame's latency.
    await runner.label(new Uint8Array(e.inputSize * e.inputSize * 3), -1, 0);
    runner.reset();
    return runner;
  }

  /** One rgb24 frame (inputSize² × 3) through the embedder and the head, state carried. */
  async label(rgb: Uint8Array, index: number, timestampMs: number): Promise<DeviceResult> {
    if (this.disposed) throw new FramewiseError(ErrorCodes.USAGE, 'device runner used after dispose()');
    const t0 = performance.now();
    const s = this.inputSize;
    const motion = this.motion?.next({ rgb, width: s, height: s });
    const input = tf.tensor4d(rgb, [1, s, s, 3], 'int32');
    let emb: tf.Tensor | undefined;
    let embedding: Float32Array;
    try {
      emb = this.net.infer(input, true);
      embedding = (await emb.data()) as Float32Array;
    } finally {
      input.dispose();
      emb?.dispose();
    }
    const r = this.head.step(this.state, [motion ? withMotion(embedding, motion) : embedding]);
    this.state = r.state;
    const l = toFrameLabel({ streamId: 'device', index, timestampMs }, r.probs[0]!, this.meta.classes);
    return { ...l, ms: performance.now() - t0 };
  }

  reset(): void {
    this.state = this.head.zeroState();
    this.motion?.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.head.dispose();
    (this.net as { model?: { dispose(): void } }).model?.dispose();
  }
}

async function pickBackend(prefer?: string): Promise<string> {
  const order = prefer ? [prefer] : [...DEVICE_BACKENDS];
  const failed: string[] = [];
  for (const name of order) {
    if (name === 'webgpu' && !(navigator as { gpu?: unknown }).gpu) {
      failed.push('webgpu (no navigator.gpu)');
      continue;
    }
    // WebGL on a software rasteriser (no GPU: SwiftShader, llvmpipe) is many times slower than
    // WASM (measured: scripts/bench-device.ts), so it only runs when asked for by name.
    const renderer = name === 'webgl' && !prefer ? softwareRenderer() : undefined;
    if (renderer) {
      failed.push(`webgl (software renderer ${renderer})`);
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
      failed.push(name);
    } catch (err) {
      failed.push(`${name} (${(err as Error).message})`);
    }
  }
  throw new FramewiseError(ErrorCodes.BACKEND_UNAVAILABLE, `no tfjs backend works in this browser: ${failed.join(', ')}`);
}

/** The WebGL renderer's name when it is a CPU rasteriser, else undefined. */
function softwareRenderer(): string | undefined {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') ?? document.createElement('canvas').getContext('webgl');
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return /swiftshader|llvmpipe|softpipe|software/i.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { cache: 'no-store' });
  const body = (await res.json()) as { code?: string; message?: string };
  if (!res.ok) throw new FramewiseError((body.code as typeof ErrorCodes.USAGE) ?? ErrorCodes.USAGE, body.message ?? `${url}: HTTP ${res.status}`);
  return body;
}
