import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import { ApiError, errorAnswer, toApiError } from './errors.js';
import { ROUTES, UNSUPPORTED_PATHS, type RouteContext } from './routes.js';
import type { ApiVmm } from './vmm.js';
import { prometheusText } from './metrics.js';
import type { ZodType } from 'zod';

/** Bounds on what a client may cost the server; the defaults suit a local control socket. */
export interface ApiLimits {
  /** Largest request body in bytes (default 1 MiB): a larger Content-Length is refused at once with 413. */
  maxBodyBytes: number;
  /** Time to receive the headers (default 10 s) and the whole request (default 30 s): else 408. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Open connections (default 64): one more is answered 429 and closed. */
  maxConnections: number;
}

/** The default ApiLimits. */
export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 1 << 20,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 64,
};

/** Where and how an API server listens, and what ends the VMM. */
export interface ApiServerOptions {
  socketPath: string;
  vmm: ApiVmm;
  limits?: Partial<ApiLimits>;
  /** Called after vmm.shutdown was answered and the server closed (the CLI ends the process). */
  onExit?: () => void;
  /** Hears about request failures the VMM answered with 5xx (logging). */
  onError?: (err: unknown, path: string) => void;
}

/** A listening API server. */
export interface ApiServer {
  readonly socketPath: string;
  /** Stops listening, ends every connection and removes the socket file. */
  close(): Promise<void>;
}

const API_ROOT = '/api/v1/';
const SERVER_NAME = 'tsvmm (Cloud Hypervisor API)';

/** Writes an error in CH's shape on a socket that has no response object (parser errors, refused connections). */
function rawError(socket: Socket, err: ApiError): void {
  const { status, body } = errorAnswer(err);
  if (socket.writable)
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nServer: ${SERVER_NAME}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroySoon?.();
}

/** The API path (`vm.info`) of a request URL, or an ApiError (not under /api/v1, `..`, odd characters). */
export function apiPath(url: string | undefined): string {
  const raw = (url ?? '').split('?')[0];
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new ApiError('BadRequest', 'the request path is not valid percent-encoding');
  }
  if (decoded.split('/').some((seg) => seg === '..' || seg === '.'))
    throw new ApiError('BadRequest', "the request path must not contain '.' or '..' segments");
  if (!decoded.startsWith(API_ROOT) || !/^[a-z.-]+$/.test(decoded.slice(API_ROOT.length)))
    throw new ApiError('NotFound', `no endpoint at '${raw.slice(0, 200)}'`);
  return decoded.slice(API_ROOT.length);
}

/** Reads a request body up to `max` bytes; more is a 413 (the rest is not read). */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return Promise.reject(tooLarge(max));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge(max));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const tooLarge = (max: number): ApiError =>
  new ApiError('TooLarge', `the request body is larger than ${max} bytes`, 'Payload Too Large');

/** Parses and validates a body against a route's schema: CH's 400 "Failed to deserialize JSON" otherwise. */
function parseBody(schema: ZodType, raw: Buffer): unknown {
  const bad = (why: string): ApiError => new ApiError('BadRequest', why, 'Failed to deserialize JSON');
  if (raw.length === 0) throw bad('this endpoint needs a JSON body');
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw bad(`malformed JSON: ${(err as Error).message}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    const where = i.path.length ? i.path.join('.') : 'body';
    throw bad(`${where}: ${i.message}`);
  }
  return r.data;
}

/**
 * Starts the Cloud Hypervisor-compatible API on a Unix socket (HTTP/1.1, node:http): the endpoints of routes.ts
 * under /api/v1, GET /metrics (Prometheus text). Every failure is answered in CH's error shape (a JSON array of
 * messages) with a 4xx for bad input; bodies, header and request times and connections are bounded (ApiLimits).
 * A stale socket file at the path (nothing listening) is replaced; a live one is refused.
 */
export async function startApiServer(o: ApiServerOptions): Promise<ApiServer> {
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  await removeStaleSocket(o.socketPath);
  const server = http.createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4))),
    maxHeaderSize: 16 * 1024,
    keepAliveTimeout: 5000,
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    if (sockets.size >= limits.maxConnections) {
      rawError(s, new ApiError('TooManyRequests', `more than ${limits.maxConnections} open connections`));
      return;
    }
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const e =
      code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError('Timeout', 'the request took too long to arrive', 'Request Timeout')
        : code === 'HPE_HEADER_OVERFLOW'
          ? new ApiError('HeadersTooLarge', 'the request headers are too large')
          : new ApiError('BadRequest', `malformed HTTP request (${code || err.message})`);
    rawError(socket, e);
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      server.closeAllConnections?.();
    }).then(() => fs.rmSync(o.socketPath, { force: true })));

  server.on('request', (req, res) => {
    const after: (() => void)[] = [];
    const ctx: RouteContext = {
      vmm: o.vmm,
      afterResponse: (fn) => after.push(fn),
      exitVmm: () => void close().then(() => o.onExit?.()),
    };
    res.setHeader('Server', SERVER_NAME);
    res.on('finish', () => after.forEach((fn) => fn()));
    void handle(req, res, ctx, limits.maxBodyBytes).catch((err: unknown) => {
      const e = toApiError(err);
      if (e.status >= 500) o.onError?.(err, req.url ?? '');
      send(res, e.status, e.body(), e.status === 413);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: o.socketPath, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { socketPath: o.socketPath, close };
}

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  ctx: RouteContext,
  maxBody: number,
): Promise<void> {
  if ((req.url ?? '').split('?')[0] === '/metrics' && req.method === 'GET') {
    const text = prometheusText(ctx.vmm);
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  const name = apiPath(req.url);
  const route = ROUTES[name];
  if (!route) {
    if (UNSUPPORTED_PATHS.includes(name)) throw new ApiError('Unsupported', `${name} is not supported by tsvmm`);
    throw new ApiError('NotFound', `no endpoint at '/api/v1/${name}'`);
  }
  if (req.method !== route.method)
    throw new ApiError('BadRequest', `${name} takes ${route.method}, not ${String(req.method).slice(0, 16)}`);
  const raw = await readBody(req, maxBody);
  const body = route.body ? parseBody(route.body, raw) : undefined;
  const out = await route.handle(ctx, body);
  if (out === undefined) send(res, 204);
  else send(res, 200, out);
}

function send(res: http.ServerResponse, status: number, json?: unknown, close = false): void {
  if (res.headersSent) return void res.destroy();
  const body = json === undefined ? '' : JSON.stringify(json);
  const headers: http.OutgoingHttpHeaders = { 'Content-Length': Buffer.byteLength(body) };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  if (close) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** Removes a socket file nothing listens on (a crashed VMM's); refuses a live one or a non-socket. */
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ApiError('AlreadyExists', `${p} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = new net.Socket();
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
    c.connect(p);
  });
  if (live) throw new ApiError('AlreadyExists', `another VMM is listening on ${p}`);
  fs.rmSync(p, { force: true });
}
