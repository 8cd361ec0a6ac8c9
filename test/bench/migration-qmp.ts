import { connect, type Socket } from 'node:net';

/** A QMP connection (QEMU's JSON monitor): commands answered in order, events kept with their arrival time. */
export class Qmp {
  private buf = '';
  private readonly waiting: ((r: Record<string, unknown>) => void)[] = [];
  /** Events seen so far: name and performance.now() of arrival. */
  readonly events: { event: string; at: number }[] = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const m = JSON.parse(line) as Record<string, unknown>;
        if (typeof m.event === 'string') this.events.push({ event: m.event, at: performance.now() });
        else if (!('QMP' in m)) this.waiting.shift()?.(m);
      }
    });
    sock.on('error', () => {});
  }

  /** Connects to `path` (retrying while QEMU has not created it, up to `timeoutMs`) and leaves negotiation mode. */
  static async open(path: string, timeoutMs = 30_000): Promise<Qmp> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const sock = await new Promise<Socket | undefined>((resolve) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', () => {
          s.destroy();
          resolve(undefined);
        });
      });
      if (sock) {
        const q = new Qmp(sock);
        await q.run('qmp_capabilities');
        return q;
      }
      if (performance.now() > end) throw new Error(`QMP socket ${path} did not open`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Runs one command; resolves with its `return` (throws its `error`). */
  async run(execute: string, args?: object): Promise<Record<string, unknown>> {
    const answer = new Promise<Record<string, unknown>>((r) => this.waiting.push(r));
    this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const a = await answer;
    if (a.error) throw new Error(`QMP ${execute}: ${JSON.stringify(a.error)}`);
    return (a.return ?? {}) as Record<string, unknown>;
  }

  /** Polls query-migrate every `everyMs` until it completed (or failed), up to `timeoutMs`; returns its answer. */
  async migrated(timeoutMs = 300_000, everyMs = 20): Promise<Record<string, unknown>> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const r = await this.run('query-migrate');
      if (r.status === 'completed') return r;
      if (r.status === 'failed' || r.status === 'cancelled')
        throw new Error(`QEMU migration ${String(r.status)}: ${String(r['error-desc'] ?? '')}`);
      if (performance.now() > end) throw new Error(`QEMU migration not done in time (${String(r.status)})`);
      await new Promise((res) => setTimeout(res, everyMs));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
