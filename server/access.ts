// Who may talk to `framewise serve`. Three checks, applied to every HTTP request and to the
// WebSocket upgrade before anything else runs:
// - Host: a web page can make a browser send requests to 127.0.0.1 under its own domain name (DNS
//   rebinding); the Host header then carries that name. Only the loopback names, the bound address
//   and the configured extra names are answered.
// - Origin: browsers send it on WebSocket upgrades and cross-origin requests, and a page cannot
//   forge it. A request that carries one must come from the server's own origin (the scheme and
//   Host it was reached at) or a configured one, so another site (or another port on this machine)
//   can neither open a socket nor start a job (a `text/plain` POST needs no CORS preflight).
//   Clients that are not browsers send no Origin and are judged by the token alone.
// - Token: required when one is configured (always on a non-loopback bind, see the CLI). Accepted
//   as `?token=`, as `Authorization: Bearer`, or as the cookie that a `?token=` request sets: the
//   browser then sends it with `<video>` range requests, model fetches and the WebSocket upgrade,
//   none of which can carry a header. HttpOnly keeps it from scripts, SameSite=Strict from other
//   sites' requests; the cookie name carries the port because cookies are shared across ports.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';

export interface AccessConfig {
  /** The address the server is bound to (e.g. 127.0.0.1, 0.0.0.0, 192.168.1.5). */
  host: string;
  /** Extra Host names answered (e.g. a DNS name of this machine). */
  allowHosts?: readonly string[];
  /** Extra origins allowed to open sockets and send requests, e.g. 'https://tools.example.org'. */
  allowOrigins?: readonly string[];
  /** Required from every client when set. */
  token?: string;
}

export interface AccessPolicy {
  /** Throws E_FORBIDDEN (Host, Origin) or E_UNAUTHORIZED (token); returns a Set-Cookie value to send, if any. */
  check(req: IncomingMessage, port: number): string | undefined;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = bare(host);
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** True for the all-interfaces addresses. */
export function isWildcard(host: string): boolean {
  const h = bare(host);
  return h === '0.0.0.0' || h === '::' || h === '';
}

export function accessPolicy(config: AccessConfig): AccessPolicy {
  const hosts = new Set([...LOOPBACK_NAMES, bare(config.host), ...(config.allowHosts ?? []).map(bare)].map((h) => h.toLowerCase()));
  if (isWildcard(config.host)) {
    // Bound to every interface: each of this machine's addresses is the bound address.
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) hosts.add(a.address.toLowerCase());
  }
  const origins = new Set((config.allowOrigins ?? []).map(normalOrigin));
  const token = config.token;
  return {
    check(req, port) {
      const hostHeader = req.headers.host;
      const hostname = hostHeader ? hostOf(hostHeader) : undefined;
      if (hostname === undefined || !hosts.has(hostname)) {
        throw new FramewiseError(
          ErrorCodes.FORBIDDEN,
          `Host ${JSON.stringify(hostHeader ?? '')} is not served here (start with --allow-host NAME to answer it)`,
        );
      }
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${hostHeader}` && !origins.has(normalOrigin(origin))) {
        throw new FramewiseError(
          ErrorCodes.FORBIDDEN,
          `requests from origin ${JSON.stringify(origin)} are refused (start with --allow-origin ORIGIN to allow it)`,
        );
      }
      if (token === undefined) return undefined;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const fromQuery = url.searchParams.get('token');
      const cookie = cookieName(port);
      if (fromQuery !== null && same(fromQuery, token)) return `${cookie}=${token}; HttpOnly; SameSite=Strict; Path=/`;
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (bearer !== undefined && same(bearer, token)) return undefined;
      const fromCookie = readCookie(req.headers.cookie, cookie);
      if (fromCookie !== undefined && same(fromCookie, token)) return undefined;
      throw new FramewiseError(
        ErrorCodes.UNAUTHORIZED,
        'this server needs its token: open the URL it printed (…/?token=…), or send "Authorization: Bearer <token>"',
      );
    },
  };
}

/** The cookie that carries the token for the server on `port`. */
export function cookieName(port: number): string {
  return `framewise-token-${port}`;
}

/** Host without IPv6 brackets, lower-cased. */
function bare(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

/** The hostname of a Host header ("name:port", "[v6]:port"); undefined when malformed. */
function hostOf(header: string): string | undefined {
  try {
    return bare(new URL(`http://${header}`).hostname);
  } catch {
    return undefined;
  }
}

function normalOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return origin;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time comparison, so response times do not reveal how much of a guess was right. */
function same(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
