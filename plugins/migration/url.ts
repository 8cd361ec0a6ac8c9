import * as fs from 'node:fs';
import * as net from 'node:net';
import { MigrationError } from './errors.js';

/** Where a migration goes: a TCP host and port, or a Unix socket path. */
export type MigrationUrl = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses `tcp:HOST:PORT` (HOST may be `[v6]`) or `unix:PATH`; anything else is a Usage error. */
export function parseMigrationUrl(url: string): MigrationUrl {
  if (url.startsWith('unix:')) {
    const path = url.slice(5);
    if (!path || path.length > 107) throw new MigrationError('Usage', `'${url}': a Unix socket path of 1 to 107 bytes`);
    return { kind: 'unix', path };
  }
  const m = /^tcp:(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(url);
  if (m) {
    const port = Number(m[2]);
    if (port > 65535) throw new MigrationError('Usage', `'${url}': port ${port} is above 65535`);
    return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0', port };
  }
  throw new MigrationError('Usage', `'${url}' is not a migration URL (tcp:HOST:PORT or unix:PATH)`);
}

/** Connects to a migration URL. */
export function connectTo(u: MigrationUrl): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock =
      u.kind === 'unix'
        ? net.createConnection({ path: u.path, allowHalfOpen: true })
        : net.createConnection({ port: u.port, host: u.host, allowHalfOpen: true });
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
    const onError = (err: Error): void =>
      reject(new MigrationError('Io', `cannot connect to ${describeUrl(u)}: ${err.message}`));
    sock.once('error', onError);
  });
}

/** The URL as written. */
export const describeUrl = (u: MigrationUrl): string =>
  u.kind === 'unix' ? `unix:${u.path}` : `tcp:${u.host}:${u.port}`;

/**
 * Listens on a migration URL and resolves with the first connection (the listener closes then; a Unix socket file
 * is removed). `onListening` gets the address (a TCP port 0 becomes the port given). Aborting `signal` stops it.
 */
export function acceptOne(
  u: MigrationUrl,
  opts: { signal?: AbortSignal; onListening?: (address: string) => void } = {},
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true });
    const cleanup = (): void => {
      server.close();
      if (u.kind === 'unix') fs.rmSync(u.path, { force: true });
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      reject(new MigrationError('Cancelled', `stopped listening on ${describeUrl(u)}`));
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    server.once('connection', (sock) => {
      cleanup();
      resolve(sock);
    });
    server.once('error', (err) => {
      cleanup();
      reject(new MigrationError('Io', `cannot listen on ${describeUrl(u)}: ${err.message}`));
    });
    if (u.kind === 'unix') {
      try {
        if (fs.lstatSync(u.path).isSocket()) fs.rmSync(u.path);
      } catch {
        // not there: fine
      }
    }
    const listening = (): void => {
      const a = server.address();
      opts.onListening?.(
        typeof a === 'string' || a === null
          ? `unix:${u.kind === 'unix' ? u.path : ''}`
          : `tcp:${u.kind === 'tcp' ? u.host : ''}:${a.port}`,
      );
    };
    if (u.kind === 'unix') server.listen(u.path, listening);
    else server.listen(u.port, u.host, listening);
  });
}
