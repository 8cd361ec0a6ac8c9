import * as fs from 'node:fs';
import * as net from 'node:net';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';
import { pauseVm, resumeVm } from './pause.js';
import { snapshotVm } from './snapshot.js';
import { sendMigration } from './send.js';

/** One request on the control socket (a JSON line); the answer is one JSON line too (progress lines before it). */
export const ControlRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('status') }),
  z.strictObject({ op: z.literal('pause') }),
  z.strictObject({ op: z.literal('resume') }),
  z.strictObject({ op: z.literal('snapshot'), dir: z.string().min(1).max(4096), leavePaused: z.boolean().optional() }),
  z.strictObject({
    op: z.literal('migrate'),
    url: z.string().min(1).max(4096),
    downtimeMs: z.number().int().min(1).max(600_000).optional(),
  }),
  z.strictObject({ op: z.literal('cancel') }),
]);

/** A control request as validated. */
export type ControlRequest = z.output<typeof ControlRequestSchema>;

/** Longest request line accepted. */
const MAX_LINE = 64 << 10;

/** Removes a stale socket file at `path` (never anything else), so a restarted VMM can listen again. */
function removeStaleSocket(path: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new MigrationError('Usage', `control socket ${path} exists and is not a socket`);
  fs.rmSync(path, { force: true });
}

/**
 * The VMM side of `vmm snapshot|migrate ... --control SOCKET`: a Unix socket on which each connection sends one
 * JSON request line and gets JSON lines back (`{"progress":...}` while a migration runs, then `{"ok":true,...}` or
 * `{"ok":false,"error":"..."}`). A bad request gets an error line; the VM keeps running.
 */
export class ControlServer {
  private readonly server: net.Server;
  private migration?: AbortController;
  private state: 'new' | 'listening' | 'closed' = 'new';

  constructor(
    private readonly path: string,
    private readonly vm: () => AssembledVm,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer((sock) => this.serve(sock));
  }

  /** Starts listening (removing a stale socket file first); after close() it does nothing. */
  async listen(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'listening';
    removeStaleSocket(this.path);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.unref();
  }

  /** Stops listening, cancels a running migration and removes the socket file (only when it listened there). */
  close(): void {
    const listened = this.state === 'listening';
    this.state = 'closed';
    this.migration?.abort();
    if (!listened) return;
    this.server.close();
    fs.rmSync(this.path, { force: true });
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    const send = (obj: object): void => void sock.write(`${JSON.stringify(obj)}\n`);
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_LINE) sock.end(`${JSON.stringify({ ok: false, error: 'request line too long' })}\n`);
        return;
      }
      sock.removeAllListeners('data');
      const line = buf.slice(0, nl);
      this.handle(line, send).then(
        (result) => sock.end(`${JSON.stringify({ ok: true, ...result })}\n`),
        (err: unknown) => {
          this.logger.warn({ err }, 'control request failed');
          sock.end(`${JSON.stringify({ ok: false, error: (err as Error)?.message ?? String(err) })}\n`);
        },
      );
    });
  }

  private async handle(line: string, send: (obj: object) => void): Promise<object> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new MigrationError('Usage', 'the request is not JSON');
    }
    const parsed = ControlRequestSchema.safeParse(raw);
    if (!parsed.success) throw new MigrationError('Usage', `not a control request: ${parsed.error.issues[0]?.message}`);
    const req = parsed.data;
    const vm = this.vm();
    switch (req.op) {
      case 'status':
        return { state: vm.lifecycle.state, migrating: this.migration !== undefined };
      case 'pause':
        await pauseVm(vm);
        return { state: vm.lifecycle.state };
      case 'resume':
        await resumeVm(vm);
        return { state: vm.lifecycle.state };
      case 'snapshot':
        return { ...(await snapshotVm(vm, req.dir, { leavePaused: req.leavePaused })) };
      case 'cancel':
        if (!this.migration) throw new MigrationError('State', 'no migration is running');
        this.migration.abort();
        return {};
      case 'migrate': {
        if (this.migration) throw new MigrationError('State', 'a migration is already running');
        const ac = new AbortController();
        this.migration = ac;
        // The answer goes out at the commit: after it the VM stops, and `vmm run` exits once it is released.
        return new Promise<object>((resolve, reject) => {
          sendMigration(vm, req.url, {
            downtimeMs: req.downtimeMs,
            signal: ac.signal,
            onProgress: (p) => send({ progress: p }),
            onCommit: (r) => resolve({ ...r, committed: true }),
          })
            .then(
              (r) => resolve({ ...r, committed: true }),
              (err: unknown) => {
                this.logger.error({ err }, 'migration failed');
                reject(err as Error);
              },
            )
            .finally(() => {
              this.migration = undefined;
            });
        });
      }
    }
  }
}

/** Sends one request to a control socket; resolves with the final answer (progress lines go to `onLine`). */
export function controlRequest(
  path: string,
  req: ControlRequest,
  onLine: (obj: Record<string, unknown>) => void = () => {},
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    let buf = '';
    let last: Record<string, unknown> | undefined;
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          last = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (last && 'ok' in last) continue;
        onLine(last);
      }
    });
    sock.on('error', (err) =>
      reject(new MigrationError('Io', `cannot talk to the VMM's control socket ${path}: ${err.message}`)),
    );
    sock.on('close', () => {
      if (!last || !('ok' in last)) return reject(new MigrationError('Io', `the VMM closed ${path} without an answer`));
      if (last.ok !== true) return reject(new MigrationError('State', String(last.error)));
      resolve(last);
    });
  });
}
