// `framewise serve --model <bundle>`: the live server. One process and one port for the browser
// client, the JSON API, /media and the WebSocket protocol (docs/protocol.md). Loopback only unless
// --host says otherwise; Ctrl-C closes sessions and jobs and exits 0.
import { parseBackendRequest } from '../../models/backend.ts';
import { parseEngineRequest } from '../../models/engine-choice.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { createServer } from '../../server/server.ts';
import { ensureClientBuilt } from '../build-client.ts';
import { modelOptions, num, precisionOptions, str, type CommandSpec } from '../command.ts';

export const command: CommandSpec = {
  name: 'serve',
  summary: 'Serve the browser client: label the webcam live, or label and play video files, over WebSockets.',
  options: {
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'trained model bundle (framewise train output)' },
    port: { type: 'string', short: 'p', valueName: 'PORT', default: String(DEFAULTS.serve.port), description: 'TCP port (0 = any free port)' },
    host: { type: 'string', valueName: 'ADDR', default: DEFAULTS.serve.host, description: 'address to bind; 0.0.0.0 exposes the server to the network' },
    media: { type: 'string', valueName: 'DIR', description: 'folder of videos clients may label and play (nothing outside it is readable)' },
    'max-sessions': { type: 'string', valueName: 'N', default: String(DEFAULTS.serve.maxSessions), description: 'concurrent WebSocket sessions; more are refused with E_BUSY' },
    ...modelOptions,
  },
  async run({ values, stderr }) {
    const bundle = str(values, 'model');
    if (!bundle) throw new FramewiseError(ErrorCodes.USAGE, '--model <bundle> is required');
    const port = num(values, 'port', 0, 65535)!;
    const maxSessions = num(values, 'max-sessions', 1, 1024)!;
    if (!Number.isInteger(port) || !Number.isInteger(maxSessions)) throw new FramewiseError(ErrorCodes.USAGE, '--port and --max-sessions must be integers');
    const log = (line: string) => stderr.write(`${line}\n`);
    if (await ensureClientBuilt()) log('framewise serve: built the browser client into client/dist');
    const server = await createServer({
      model: bundle,
      host: str(values, 'host'),
      port,
      mediaDir: str(values, 'media'),
      maxSessions,
      modelsDir: str(values, 'models-dir'),
      backend: parseBackendRequest(str(values, 'backend') ?? process.env.FRAMEWISE_BACKEND),
      engine: parseEngineRequest(str(values, 'engine')), precision: precisionOptions(values).precision, workers: num(values, 'workers', 1, 64),
      log,
    });
    const m = server.model;
    log(`framewise serve: ${m.classes.length} classes (${m.classes.join(', ')}), embedder ${m.embedderId}`);
    log(`framewise serve: open ${server.url}/ (Ctrl-C to stop)`);
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
