// `framewise doctor`: what this machine can run and, for anything missing, the fix.
// Exit 0 when it can label (a backend, ffmpeg + ffprobe, and at least one embedder's weights
// locally), 1 otherwise.
import { createRequire } from 'node:module';
import { chooseBackend, installHint, type BackendChoice, type BackendRequest } from '../../models/backend.ts';
import { EMBEDDERS } from '../../models/registry.ts';
import { cachedModelDir, findLocalWeights, loadFolderArtifacts } from '../../models/weights.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { ffmpegAvailable } from '../../pipeline/probe.ts';
import { modelOptions, str, type CommandSpec, modelRequest, cacheDirOption } from '../command.ts';

export interface ToolCheck {
  name: string;
  path?: string;
  version?: string;
  /** Where it was found: the PATH, FFMPEG_PATH/FFPROBE_PATH, or the npm package that ships it. */
  source?: string;
  problem?: string;
}

export interface EmbedderCheck {
  id: string;
  dim: number;
  dir?: string;
  source?: string;
  problem?: string;
  fix?: string;
}

export interface DoctorReport {
  backend: { choice?: BackendChoice; problem?: string };
  tools: ToolCheck[];
  modelsDir: { dir?: string; from: string };
  cacheDir: string;
  embedders: EmbedderCheck[];
  onnxruntime: { installed: boolean; path?: string };
  canLabel: boolean;
}

export async function diagnose(
  options: { backend?: BackendRequest; modelsDir?: string; modelsDirFrom?: string; cacheDir?: string } = {},
): Promise<DoctorReport> {
  const backend: DoctorReport['backend'] = {};
  try {
    backend.choice = await chooseBackend(options.backend ?? 'auto');
  } catch (err) {
    backend.problem = (err as Error).message;
  }
  const found = await ffmpegAvailable();
  const tools: ToolCheck[] = (['ffmpeg', 'ffprobe'] as const).map((name) => {
    const t = found[name];
    if (t) return { name, path: t.path, version: t.version, source: t.source };
    const envVar = name === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
    return {
      name,
      problem: process.env[envVar]
        ? `not runnable at ${envVar}=${process.env[envVar]}`
        : `not found on the PATH nor in the optional ${name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe'} package`,
    };
  });

  const modelsDir = options.modelsDir;
  const from = modelsDir ? (options.modelsDirFrom ?? 'given') : 'not set';
  const cacheDir = options.cacheDir ?? DEFAULTS.cacheDir;
  const embedders: EmbedderCheck[] = [];
  for (const info of Object.values(EMBEDDERS)) {
    const check: EmbedderCheck = { id: info.id, dim: info.dim };
    const { found } = await findLocalWeights(info.id, { modelsDir, cacheDir });
    if (found) {
      check.dir = found.dir;
      check.source = found.source;
      try {
        await loadFolderArtifacts(found.dir); // reads every weight file and checks the sizes
      } catch (err) {
        check.problem = (err as Error).message;
        check.fix = `replace the files in ${found.dir} (or delete it to download again)`;
      }
    } else {
      check.problem = 'no local weights';
      check.fix =
        `set FRAMEWISE_MODELS (or --models-dir) to a folder holding ${info.id}/model.json, ` +
        `or run once with internet access to download ${info.officialUrl} into ${cachedModelDir(cacheDir, info.id)}`;
    }
    embedders.push(check);
  }

  let onnxPath: string | undefined;
  try {
    onnxPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch {
    onnxPath = undefined;
  }

  const canLabel = !!backend.choice && tools.every((t) => !t.problem) && embedders.some((e) => !e.problem);
  return {
    backend,
    tools,
    modelsDir: { dir: modelsDir, from },
    cacheDir,
    embedders,
    onnxruntime: { installed: !!onnxPath, path: onnxPath },
    canLabel,
  };
}

export function renderReport(r: DoctorReport): string {
  const lines: string[] = [];
  if (r.backend.choice) {
    lines.push(`backend      ${r.backend.choice.name} (tfjs backend '${r.backend.choice.tfBackend}')`);
    for (const s of r.backend.choice.skipped) {
      const hint = installHint(s.name)
        .trim()
        .replace(/^\(|\)$/g, '');
      lines.push(`  skipped    ${s.name}: ${s.reason}${hint ? `\n             fix: ${hint}` : ''}`);
    }
  } else {
    lines.push(`backend      MISSING: ${r.backend.problem}`);
  }
  for (const t of r.tools) {
    lines.push(
      t.problem
        ? `${t.name.padEnd(12)} MISSING: ${t.problem}\n             fix: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg), run npm install in framewise (optional packages), or set ${t.name.toUpperCase()}_PATH`
        : `${t.name.padEnd(12)} ${t.version} at ${t.path} (${t.source === 'PATH' ? "the system's, on the PATH" : t.source === 'FFMPEG_PATH' || t.source === 'FFPROBE_PATH' ? `set by ${t.source}` : `from the npm package ${t.source}: no system ${t.name} found`})`,
    );
  }
  lines.push(`models dir   ${r.modelsDir.dir ?? '-'} (${r.modelsDir.from})`);
  lines.push(`cache        ${r.cacheDir}`);
  lines.push('embedders');
  for (const e of r.embedders) {
    const name = `${e.id} (${e.dim}-d)`;
    if (!e.problem) lines.push(`  ok         ${name.padEnd(30)} ${e.dir} [${e.source}]`);
    else lines.push(`  MISSING    ${name.padEnd(30)} ${e.problem}\n             fix: ${e.fix}`);
  }
  lines.push(
    r.onnxruntime.installed
      ? `onnxruntime  installed (${r.onnxruntime.path})`
      : 'onnxruntime  not installed (optional native engine: npm install onnxruntime-node)',
  );
  lines.push(r.canLabel ? 'ready: framewise can label on this machine' : 'NOT READY: fix the MISSING lines above');
  return lines.join('\n') + '\n';
}

export const command: CommandSpec = {
  name: 'doctor',
  summary: 'Check the backend, ffmpeg, local embedder weights and optional engines; print the fix for anything missing.',
  options: {
    ...modelOptions,
    'cache-dir': cacheDirOption,
  },
  async run(ctx) {
    const { values, stdout } = ctx;
    const request = modelRequest(ctx);
    const modelsDirFrom = str(values, 'models-dir') ? '--models-dir' : 'FRAMEWISE_MODELS';
    const report = await diagnose({ backend: request.backend, modelsDir: request.modelsDir, modelsDirFrom, cacheDir: request.cacheDir });
    stdout.write(renderReport(report));
    return report.canLabel ? 0 : 1;
  },
};
