import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A heartbeat from the sandbox's L1 on a side channel (its second UART, ttyS1), apart from the
 * console the user sees: L1 writes a line every HEARTBEAT_PERIOD_S seconds; when the lines stop
 * (L1's kernel froze, see README's known problem), the host kills QEMU and says so instead of
 * waiting without a word.
 */

/** Seconds between two beats in L1. */
export const HEARTBEAT_PERIOD_S = 5;

/** The line L1 writes. */
export const HEARTBEAT_LINE = 'TSVMM-L1-ALIVE';

/** QEMU arguments: a second 16550 at the standard COM2 port whose output QEMU sends to `socket`. */
export function heartbeatQemuArgs(socket: string): string[] {
  return ['-chardev', `socket,id=tsvmm-hb,path=${socket}`, '-device', 'isa-serial,chardev=tsvmm-hb,iobase=0x2f8,irq=3'];
}

/** Where the beats arrive: a Unix socket QEMU connects to when it starts. */
export interface HeartbeatListener {
  socket: string;
  /** Stops listening and removes the socket's folder. */
  close(): void;
}

/** Listens on a fresh Unix socket; `onData(lines)` runs for every chunk QEMU sends, with the lines it ends. */
export function listenHeartbeat(onData: (lines: number) => void): Promise<HeartbeatListener> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-hb-'));
  const socket = join(dir, 'hb.sock');
  const conns = new Set<Socket>();
  const server = createServer((c) => {
    conns.add(c);
    c.on('data', (b: Buffer) => {
      let n = 0;
      for (const x of b) if (x === 0x0a) n++;
      onData(n);
    });
    c.on('error', () => {
      /* QEMU killed: the beats just stop */
    });
    c.on('close', () => conns.delete(c));
  });
  const close = () => {
    for (const c of conns) c.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    server.once('error', (e) => {
      close();
      reject(e);
    });
    server.listen(socket, () => resolve({ socket, close }));
  });
}

/** The L1 shell line that beats in the background until L1 powers off (or freezes). */
export function heartbeatScript(): string {
  return `( while echo ${HEARTBEAT_LINE} > /dev/ttyS1; do sleep ${HEARTBEAT_PERIOD_S}; done ) 2>/dev/null &\n`;
}

/** Limits of a heartbeat watch. */
export interface HeartbeatLimits {
  /** Longest wait for the first beat (L1's kernel boot, module loading). */
  firstBeatMs: number;
  /** Longest gap between two beats after the first. */
  gapMs: number;
}

/**
 * Watches beats: `onMissed(waitedMs, beats)` runs once when a beat is later than the limits allow.
 * Call `beat(lines)` on every chunk from the channel and `stop()` when the process ended.
 */
export class HeartbeatWatch {
  private timer: NodeJS.Timeout | undefined;
  private beats = 0;
  private since = Date.now();
  private done = false;

  constructor(
    private readonly limits: HeartbeatLimits,
    private readonly onMissed: (waitedMs: number, beats: number) => void,
  ) {
    this.arm(limits.firstBeatMs);
  }

  /** Number of beats seen so far. */
  get count(): number {
    return this.beats;
  }

  /** Data arrived: the channel is alive; `lines` complete beats came with it. */
  beat(lines = 1): void {
    if (this.done) return;
    this.beats += lines;
    this.since = Date.now();
    this.arm(this.limits.gapMs);
  }

  stop(): void {
    this.done = true;
    clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.done) return;
      this.done = true;
      this.onMissed(Date.now() - this.since, this.beats);
    }, ms);
  }
}
