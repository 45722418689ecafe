// Error text as clients may see it. Messages from ffmpeg, the file system and the pipeline name
// absolute paths on the server (the jobs folder, the media folder, the user's home), which tell a
// remote client about the machine and its accounts. Clients get the file's name instead; the
// server's own log keeps the full message.

/** A path of two or more absolute segments, standing alone or after a quote, colon, '(' or '='. */
const ABSOLUTE_PATH = /(^|[\s"'(:=])(\/(?:[^\s"'/:;,()]+\/)+[^\s"'/:;,()]*)/g;
/** The server's own URL paths are fine to show. */
const URL_PATHS = /^\/(api|media|ws)(\/|$)/;

/** `message` with every absolute server path replaced by `…/<file name>`. */
export function publicMessage(message: string): string {
  return message.replace(ABSOLUTE_PATH, (all, lead: string, path: string) => {
    if (URL_PATHS.test(path)) return all;
    const name = path.replace(/\/+$/, '').split('/').pop() ?? '';
    return `${lead}…/${name}`;
  });
}
