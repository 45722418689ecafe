// Where the ffmpeg and ffprobe binaries are: the one module that reads PATH, FFMPEG_PATH and
// FFPROBE_PATH (library code reads no other environment): the explicit variable, else the PATH,
// else the binaries shipped inside the optional npm packages @ffmpeg-installer/ffmpeg and
// @ffprobe-installer/ffprobe. Used by decoding, probing, the overlay, playback copies and the ONNX
// export's photo and calibration decoding alike, so every part runs the same ffmpeg.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, isAbsolute, join } from 'node:path';
import { ErrorCodes, FramewiseError } from './errors.ts';

export const INSTALL_HINT =
  'install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg), or run npm install in framewise to get the optional @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe packages';

export type FfmpegTool = 'ffmpeg' | 'ffprobe';

export interface FoundBinary {
  path: string;
  /** Where it was found: the explicit variable, the PATH, or the npm package that ships it. */
  source: 'FFMPEG_PATH' | 'FFPROBE_PATH' | 'PATH' | '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe';
}

const PACKAGES = { ffmpeg: '@ffmpeg-installer/ffmpeg', ffprobe: '@ffprobe-installer/ffprobe' } as const;

/**
 * Where an ffmpeg tool is, or undefined when absent. FFMPEG_PATH / FFPROBE_PATH (the variables
 * fluent-ffmpeg reads) win when set, and are not second-guessed: a wrong explicit setting must be
 * reported, not silently replaced by another binary. Then the system's tool on the PATH (usually
 * newer, and what the user installed), then the npm package's binary. `env` is injectable so
 * tests can hide the system's tools.
 */
export function locateBinary(tool: FfmpegTool, env: NodeJS.ProcessEnv = process.env): FoundBinary | undefined {
  const variable = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  const explicit = env[variable];
  if (explicit) return isExecutable(explicit) ? { path: explicit, source: variable } : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, tool);
    if (isExecutable(candidate)) return { path: candidate, source: 'PATH' };
  }
  const packaged = packagedBinary(tool);
  return packaged ? { path: packaged, source: PACKAGES[tool] } : undefined;
}

/** The binary inside the optional npm package, when it is installed for this platform. */
function packagedBinary(tool: FfmpegTool): string | undefined {
  try {
    const path = (createRequire(import.meta.url)(PACKAGES[tool]) as { path?: string }).path;
    return path && isExecutable(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Absolute path of an ffmpeg tool (see locateBinary), or undefined when absent. */
export function findBinary(tool: FfmpegTool): string | undefined {
  return locateBinary(tool)?.path;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The tool's path, or FFMPEG_MISSING saying how to get it. */
export function requireBinary(tool: FfmpegTool): string {
  const path = findBinary(tool);
  if (path) return path;
  const envVar = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  const explicit = process.env[envVar];
  throw new FramewiseError(
    ErrorCodes.FFMPEG_MISSING,
    explicit
      ? `${tool} not found at ${envVar}=${explicit}: fix or unset ${envVar}, or ${INSTALL_HINT}`
      : `${tool} not found on the PATH nor in the ${PACKAGES[tool]} package: ${INSTALL_HINT}`,
  );
}

const passthroughCache = new Map<string, string[]>();

/**
 * The output option that passes every frame through with its own timestamp (no duplicates, no
 * drops): `-fps_mode passthrough` since ffmpeg 5.1 (libavutil 57.28), `-vsync passthrough` before
 * (the @ffmpeg-installer package ships 4.1). Asked once per binary.
 */
export function passthroughOption(ffmpegPath: string): string[] {
  let args = passthroughCache.get(ffmpegPath);
  if (!args) {
    let major = 0,
      minor = 0;
    try {
      const out = execFileSync(ffmpegPath, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
      const m = out.match(/libavutil\s+(\d+)\.\s*(\d+)/);
      if (m) [major, minor] = [Number(m[1]), Number(m[2])];
    } catch {
      // unknown version: the old spelling, which newer ffmpeg still accepts (with a warning)
    }
    args = major > 57 || (major === 57 && minor >= 28) ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough'];
    passthroughCache.set(ffmpegPath, args);
  }
  return args;
}
