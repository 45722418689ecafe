// A folder as a POSIX ustar archive, for downloads of a taught bundle or dataset: every browser
// can save it and every system can unpack it (`tar xf`), and writing one needs no dependency.
// Regular files only; names are relative to the folder, under a top-level name.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

const BLOCK = 512;

/** Files under `dir` (sorted, recursive), skipping names in `skip` and dot files. */
function listFiles(dir: string, skip: ReadonlySet<string>, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith('.') || skip.has(e.name)) continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(join(dir, e.name), skip, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let path = name;
  let prefix = '';
  if (Buffer.byteLength(path) > 100) {
    const cut = path.lastIndexOf('/', 155);
    prefix = path.slice(0, cut);
    path = path.slice(cut + 1);
  }
  const octal = (v: number, len: number) => v.toString(8).padStart(len - 1, '0') + '\0';
  h.write(path, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii');
  h.fill(' ', 148, 156); // checksum counts as spaces while it is computed
  h.write('0', 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Writes `dir` as `<top>/...` to `out` (backpressure respected) and ends it. */
export async function writeTar(dir: string, top: string, out: Writable, skip: ReadonlySet<string> = new Set()): Promise<void> {
  const write = (b: Buffer) => (out.write(b) ? Promise.resolve() : new Promise<void>((ok) => out.once('drain', ok)));
  const chunk = Buffer.alloc(64 * 1024);
  for (const rel of listFiles(dir, skip)) {
    const full = join(dir, rel);
    const st = statSync(full);
    await write(header(`${top}/${rel}`, st.size, st.mtimeMs));
    const fd = openSync(full, 'r');
    try {
      let left = st.size;
      while (left > 0) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, left), null);
        if (n <= 0) break;
        left -= n;
        await write(Buffer.from(chunk.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
    const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
    if (pad) await write(Buffer.alloc(pad));
  }
  await write(Buffer.alloc(2 * BLOCK));
  out.end();
}
