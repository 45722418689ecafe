// `framewise serve --model <bundle>`: the live server. One process and one port for the browser
// client, the JSON API, /media and the WebSocket protocol (docs/protocol.md). Loopback only unless
// --host says otherwise; on any other address a token is required (generated here and printed in
// the URL, like notebook servers do, unless given or --no-auth). Ctrl-C closes sessions and jobs
// and exits 0.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { isLoopback } from '../../server/access.ts';
import { createServer } from '../../server/server.ts';
import { ensureClientBuilt } from '../build-client.ts';
import { bool, modelOptions, num, str, type CommandSpec, type OptionValues, modelRequest } from '../command.ts';

export const command: CommandSpec = {
  name: 'serve',
  summary: 'Serve the browser client: label the webcam live, or label and play video files, over WebSockets.',
  options: {
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'trained model bundle (framewise train output); without it: teach only' },
    embedder: { type: 'string', valueName: 'ID', default: DEFAULTS.embedder, description: 'without --model: the embedder the Teach view trains on' },
    'teach-dir': {
      type: 'string',
      valueName: 'DIR',
      default: join(DEFAULTS.cacheDir, 'teach'),
      description: "the Teach view's clips (a folder-per-class dataset) and trained bundles, kept across restarts",
    },
    port: { type: 'string', short: 'p', valueName: 'PORT', default: String(DEFAULTS.serve.port), description: 'TCP port (0 = any free port)' },
    host: { type: 'string', valueName: 'ADDR', default: DEFAULTS.serve.host, description: 'address to bind; 0.0.0.0 exposes the server to the network' },
    media: { type: 'string', valueName: 'DIR', description: 'folder of videos clients may label and play (nothing outside it is readable)' },
    token: { type: 'string', valueName: 'TOKEN', description: 'clients must present it (env FRAMEWISE_TOKEN); generated on a non-loopback --host when absent' },
    'no-auth': { type: 'boolean', description: 'serve a non-loopback --host without a token: anyone who can reach the port may use it' },
    'allow-origin': {
      type: 'string',
      multiple: true,
      valueName: 'ORIGIN',
      description: 'another web origin (scheme://host:port) allowed to open sockets and send requests; repeatable',
    },
    'allow-host': { type: 'string', multiple: true, valueName: 'NAME', description: "another Host name to answer (e.g. this machine's DNS name); repeatable" },
    'max-sessions': {
      type: 'string',
      valueName: 'N',
      default: String(DEFAULTS.serve.maxSessions),
      description: 'concurrent WebSocket sessions; more are refused with E_BUSY',
    },
    'unknown-below': {
      type: 'string',
      valueName: 'P',
      description:
        "frames whose top probability is below P are labeled 'unknown' (default: the bundle's calibration; 0 = never unknown: its distance check off too)",
    },
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stderr } = ctx;
    const bundle = str(values, 'model');
    const port = num(values, 'port', 0, 65535)!;
    const maxSessions = num(values, 'max-sessions', 1, 1024)!;
    if (!Number.isInteger(port) || !Number.isInteger(maxSessions)) throw new FramewiseError(ErrorCodes.USAGE, '--port and --max-sessions must be integers');
    const log = (line: string) => stderr.write(`${line}\n`);
    const host = str(values, 'host') ?? DEFAULTS.serve.host;
    const noAuth = bool(values, 'no-auth');
    let token = str(values, 'token') ?? ctx.runtime.token;
    if (noAuth && token !== undefined) throw new FramewiseError(ErrorCodes.USAGE, '--no-auth and a token (--token or FRAMEWISE_TOKEN) contradict each other');
    if (token === undefined && !noAuth && !isLoopback(host)) token = randomBytes(24).toString('base64url');
    if (await ensureClientBuilt()) log('framewise serve: built the browser client into client/dist');
    const server = await createServer({
      model: bundle,
      embedder: str(values, 'embedder'),
      teachDir: str(values, 'teach-dir'),
      host,
      token,
      noAuth,
      allowOrigins: list(values, 'allow-origin'),
      allowHosts: list(values, 'allow-host'),
      port,
      mediaDir: str(values, 'media'),
      maxSessions,
      unknownBelow: num(values, 'unknown-below', 0, 1),
      ...modelRequest(ctx),
      log,
    });
    const m = server.model;
    log(
      m.classes.length
        ? `framewise serve: ${m.classes.length} classes (${m.classes.join(', ')}), embedder ${m.embedderId}`
        : `framewise serve: teach only (no model yet), embedder ${m.embedderId}; Teach view folder ${str(values, 'teach-dir')}`,
    );
    if (noAuth && !isLoopback(host)) log(`framewise serve: WARNING: no token (--no-auth): anyone who can reach ${host} may use this server and read its media`);
    log(`framewise serve: open ${server.openUrl} (Ctrl-C to stop)`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        log('framewise serve: shutting down');
        void server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};

function list(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}
