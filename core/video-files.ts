// Which file names are taken for videos, wherever framewise looks in a folder: datasets, the
// inputs of `label`, the media list of `serve`.
import { extname } from 'node:path';

export const VIDEO_EXTENSIONS = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.webm',
  '.avi',
  '.mpg',
  '.mpeg',
  '.ts',
  '.flv',
  '.wmv',
  '.gif',
  '.y4m',
  '.3gp',
  '.ogv',
]);

export const isVideoFile = (file: string) => VIDEO_EXTENSIONS.has(extname(file).toLowerCase());
