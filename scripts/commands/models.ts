// `framewise models list` and `framewise models export-onnx <id>`: which weights each embedder has
// here, and the native engine's verified ONNX export of them.
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { ensureBackend } from '../../models/backend.ts';
import { EMBEDDER_IDS, embedderInfo } from '../../models/registry.ts';
import { exportVerified, onnxCachePath, sha256, sidecarPath, writeExport, type Sidecar } from '../../models/onnx/cache.ts';
import { EXPORTER_VERSION, OPSET } from '../../models/onnx/export.ts';
import { layersDir, readLayersArtifacts } from '../../models/onnx/layers-source.ts';
import { describeAgreement } from '../../models/onnx/int8-agreement.ts';
import { findInt8, makeInt8 } from '../../models/onnx/int8-cache.ts';
import { decodeModelSummary } from '../../models/onnx/proto.ts';
import { parsePrecisionRequest } from '../../models/precision.ts';
import { findLocalWeights } from '../../models/weights.ts';
import { modelOptions, str, type CommandContext, type CommandSpec, modelRequest, cacheDirOption } from '../command.ts';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function onnxStatus(id: string, cacheDir: string, modelsDir: string | undefined): Promise<string> {
  const path = onnxCachePath(id, cacheDir);
  if (!(await exists(path))) return 'not exported (made on first use, or `framewise models export-onnx`)';
  let sidecar: Sidecar | undefined;
  try {
    sidecar = JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Sidecar;
  } catch {
    return `${path} (no verification record: verified on next use)`;
  }
  const bytes = new Uint8Array(await readFile(path));
  if (sidecar.onnxSha256 !== sha256(bytes) || !sidecar.verification?.ok) return `${path} (changed since verification: verified on next use)`;
  let stale = sidecar.exporterVersion !== EXPORTER_VERSION;
  try {
    stale ||= (await readLayersArtifacts(id, modelsDir)).sourceHash !== sidecar.sourceSha256;
  } catch {
    // no layers model here: the file cannot be redone, but its record still holds
  }
  const v = sidecar.verification;
  return `${path} (verified, max |diff| ${v.maxAbsDiff.toExponential(1)} on ${v.frames} ${v.inputs}${stale ? '; stale, redone on next use' : ''})`;
}

async function list(ctx: CommandContext): Promise<number> {
  const { modelsDir, cacheDir } = modelRequest(ctx);
  for (const id of EMBEDDER_IDS) {
    const info = embedderInfo(id);
    const dir = modelsDir;
    const graph = await findLocalWeights(id, { modelsDir: dir, cacheDir });
    const layers = dir ? join(layersDir(id, dir), 'model.json') : 'no --models-dir / FRAMEWISE_MODELS';
    let macs = info.multiplyAdds;
    try {
      macs = (JSON.parse(await readFile(sidecarPath(onnxCachePath(id, cacheDir)), 'utf8')) as Sidecar).macs.embedding;
    } catch {
      // no export here: the registry's count, made by the same exporter
    }
    ctx.stdout.write(`${id}  (${info.dim}-d, ${info.inputSize}x${info.inputSize}, ${(macs / 1e6).toFixed(1)} M multiply-adds/frame)\n`);
    ctx.stdout.write(
      `  tfjs:   ${graph.found ? `${graph.found.dir} [${graph.found.source}]` : `not here (searched ${graph.searched.map((s) => s.dir).join(', ')}; downloaded on first use)`}\n`,
    );
    ctx.stdout.write(`  layers: ${(await exists(layers)) ? resolve(layers) : `not here (${layers}): no ONNX export possible`}\n`);
    ctx.stdout.write(`  onnx:   ${await onnxStatus(id, cacheDir, modelsDir)}\n`);
    const int8 = await findInt8(id, cacheDir, modelsDir);
    ctx.stdout.write(
      int8
        ? `  int8: ${int8.path} (verified: ${describeAgreement(int8.sidecar.agreement)}; x${(int8.sidecar.speed.int8Fps / int8.sidecar.speed.fp32Fps).toFixed(2)} fp32 on ${int8.sidecar.speed.cpu})\n`
        : `  int8: not exported (framewise models export-onnx ${id} --precision int8)\n`,
    );
  }
  return 0;
}

/** `export-onnx <id> --precision int8`: the quantized export, calibrated on --calibrate DIR (default: the shared data next to the models). */
async function exportInt8(ctx: CommandContext, id: string): Promise<number> {
  const { modelsDir, cacheDir, backend } = modelRequest(ctx);
  const t0 = performance.now();
  const calibrate = str(ctx.values, 'calibrate');
  const log = (l: string) => ctx.stderr.write(l + '\n');
  const ready = await makeInt8({
    id,
    modelsDir,
    cacheDir,
    imagesDir: str(ctx.values, 'images-dir'),
    ...(calibrate ? { calibrate: [calibrate] } : {}),
    ...(str(ctx.values, 'out') ? { file: str(ctx.values, 'out') } : {}),
    log,
    beforeTfjs: () => ensureBackend(backend, log).then(() => {}),
  });
  const s = ready.sidecar;
  const summary = decodeModelSummary(ready.bytes).opTypes;
  log(
    `framewise: int8 ${id} -> ${ready.path} (${(ready.bytes.length / 1e6).toFixed(1)} MB, ${Object.entries(summary)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}; ${s.reduceRange ? '7-bit weights: no VNNI on this CPU' : '8-bit weights'})\n` +
      `framewise: agreement with fp32: ${describeAgreement(s.agreement)} (thresholds: median >= ${s.agreement.thresholds.cosineMedian}, 5th percentile >= ${s.agreement.thresholds.cosineP5})\n` +
      `framewise: speed on ${s.speed.cpu}, one thread, batches of 8: int8 ${s.speed.int8Fps.toFixed(1)} vs fp32 ${s.speed.fp32Fps.toFixed(1)} frames per CPU-second (x${(s.speed.int8Fps / s.speed.fp32Fps).toFixed(2)}); ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  ctx.stdout.write(ready.path + '\n');
  return 0;
}

async function exportOnnx(ctx: CommandContext): Promise<number> {
  const id = ctx.positionals[1];
  if (!id) throw new FramewiseError(ErrorCodes.USAGE, `export-onnx needs an embedder id: ${EMBEDDER_IDS.join(', ')}`);
  embedderInfo(id);
  const precision = parsePrecisionRequest(str(ctx.values, 'precision'));
  if (precision === 'int8') return exportInt8(ctx, id);
  const request = modelRequest(ctx);
  const modelsDir = request.modelsDir;
  const out = str(ctx.values, 'out') ?? onnxCachePath(id, request.cacheDir);
  const backend = await ensureBackend(request.backend, (l) => ctx.stderr.write(l + '\n'));
  const t0 = performance.now();
  const v = await exportVerified({ id, modelsDir, imagesDir: str(ctx.values, 'images-dir') });
  const sidecar = await writeExport(out, v);
  const r = v.verification;
  ctx.stderr.write(
    `framewise: ${id} -> ${out} (${(v.export.bytes.length / 1e6).toFixed(1)} MB, opset ${OPSET}, ` +
      `${Object.entries(v.export.opCounts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')})\n` +
      `framewise: verified against tfjs ${backend.name} layers model on ${r.frames} ${r.inputs}: ` +
      `embedding max |diff| ${r.maxAbsDiff.toExponential(2)} (tolerance ${r.tolerance}), logits ${r.maxLogitDiff.toExponential(2)}; ` +
      `${(sidecar.macs.embedding / 1e6).toFixed(1)} M multiply-adds/frame; ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  ctx.stdout.write(out + '\n');
  return 0;
}

export const command: CommandSpec = {
  name: 'models',
  summary:
    'list the embedders and their weights here, or export one to a verified ONNX file (native engine; --precision int8: quantized, calibrated with --calibrate DIR)',
  args: '<list | export-onnx <id>>',
  minArgs: 1,
  options: {
    ...modelOptions,
    out: {
      type: 'string',
      valueName: 'FILE',
      defaultHelp: 'the cache',
      description: 'export-onnx: where to write the .onnx (and FILE.json, its verification record)',
    },
    'cache-dir': cacheDirOption,
    'images-dir': { type: 'string', valueName: 'DIR', description: 'photos to verify the export on (default <models-dir>/../data/images)' },
  },
  async run(ctx) {
    switch (ctx.positionals[0]) {
      case 'list':
        return list(ctx);
      case 'export-onnx':
        return exportOnnx(ctx);
      default:
        throw new FramewiseError(ErrorCodes.USAGE, `unknown models subcommand "${ctx.positionals[0]}": use list or export-onnx <id>`);
    }
  },
};
