import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { apiRequest, type ApiAnswer } from '../../hosts/api/client.js';
import { startApiServer, type ApiLimits, type ApiServer } from '../../hosts/api/server.js';
import { ApiVmm, type ApiVmmOptions } from '../../hosts/api/vmm.js';
import { fakeRun } from './fake-vm.js';
import { checkRequest, checkResponse, loadSpec, type Spec } from './openapi.js';

let spec: Spec | undefined;
/** The parsed spec, loaded once per process. */
export const theSpec = (): Spec => (spec ??= loadSpec());

/** A server on a fresh socket with an ApiVmm over fakeRun; every exchange checked against the spec. */
export class ApiHarness {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-api-'));
  readonly socket = path.join(this.dir, 'api.sock');
  readonly fake: ReturnType<typeof fakeRun>;
  vmm!: ApiVmm;
  server!: ApiServer;
  exited = 0;

  constructor(readonly opts: { powerButton?: boolean; failWith?: Error; limits?: Partial<ApiLimits> } = {}) {
    this.fake = fakeRun(opts);
  }

  async start(extra: Partial<ApiVmmOptions> = {}): Promise<this> {
    this.vmm = new ApiVmm({ baseDir: this.dir, version: '0.1.0', run: this.fake.run, ...extra });
    this.server = await startApiServer({
      socketPath: this.socket,
      vmm: this.vmm,
      limits: this.opts.limits,
      onExit: () => this.exited++,
    });
    return this;
  }

  /**
   * One request: the body must conform to the spec unless `invalid` says it is meant not to; the answer must
   * conform to the spec (or be CH's error shape). Resolves with the answer.
   */
  async call(method: 'GET' | 'PUT', name: string, body?: unknown, invalid = false): Promise<ApiAnswer> {
    if (!invalid) expect(checkRequest(theSpec(), name, method, body), `request ${name}`).to.deep.equal([]);
    const a = await apiRequest(this.socket, method, name, body);
    expect(checkResponse(theSpec(), name, method, a.status, a.body), `response ${name} ${a.status}`).to.deep.equal([]);
    return a;
  }

  async close(): Promise<void> {
    await this.vmm.stopAll().catch(() => {});
    await this.server.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sends raw bytes on a new connection (all at once, or one chunk per `everyMs`) and resolves with what came back. */
export function rawExchange(socket: string, chunks: (string | Buffer)[], everyMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    const got: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    c.on('connect', () => {
      if (!everyMs) for (const ch of chunks) c.write(ch);
      else {
        let i = 0;
        timer = setInterval(
          () => (i < chunks.length && !c.destroyed ? c.write(chunks[i++]) : clearInterval(timer)),
          everyMs,
        );
      }
    });
    c.on('data', (d: Buffer) => got.push(d));
    c.on('close', () => {
      clearInterval(timer);
      resolve(Buffer.concat(got).toString('utf8'));
    });
    c.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e),
    );
  });
}

/** The status and JSON body of a raw HTTP answer. */
export function parseRaw(text: string): { status: number; body: unknown } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const i = text.indexOf('\r\n\r\n');
  const raw = i >= 0 ? text.slice(i + 4) : '';
  let body: unknown = raw;
  try {
    body = raw ? JSON.parse(raw) : undefined;
  } catch {
    /* text */
  }
  return { status, body };
}
