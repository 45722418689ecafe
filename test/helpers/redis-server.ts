// A real redis-server (Debian's /usr/bin/redis-server, or REDIS_SERVER) on a free loopback port,
// in memory only, for the queue tests and the queue benchmark. Never a mock.
//
//   const redis = await startRedis();          // afterAll(() => redis.stop())
//   ... redis.url ...
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  /** Runs redis-cli against this server and returns its output. */
  cli(...args: string[]): Promise<string>;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s); safe to call twice. */
  stop(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER || 'redis-server';

/** A port nothing listens on now (redis-server cannot bind port 0 and report it back). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function launch(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not start in 10 s:\n${out}`));
    }, 10_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${BIN}: ${err.message} (apt-get install redis-server)`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${out}`));
    });
  });
}

export async function startRedis(): Promise<RedisServer> {
  let child: ChildProcess | undefined;
  let port = 0;
  let lastError: unknown;
  // Another process may take the port between freePort() and redis binding it: try a few.
  for (let i = 0; i < 3 && !child; i++) {
    port = await freePort();
    child = await launch(port).catch((err) => {
      lastError = err;
      return undefined;
    });
  }
  if (!child) throw lastError;
  const proc = child;
  // A test process that dies on an uncaught error still runs 'exit' handlers: no orphan server.
  const onExit = () => proc.kill('SIGKILL');
  process.once('exit', onExit);
  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: proc.pid!,
    cli: (...args) =>
      new Promise((resolve, reject) =>
        execFile('redis-cli', ['-p', String(port), ...args], (err, stdout, stderr) =>
          err ? reject(new Error(String(stderr) || err.message)) : resolve(String(stdout)),
        ),
      ),
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const kill = setTimeout(() => proc.kill('SIGKILL'), 3000);
        proc.once('exit', () => {
          clearTimeout(kill);
          process.off('exit', onExit);
          resolve();
        });
        proc.kill('SIGTERM');
      });
      return stopped;
    },
  };
}
