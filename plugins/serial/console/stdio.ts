import type { Readable, Writable } from 'node:stream';
import type { DropCounter, SerialConsole, SerialRxPort } from './console.js';
import { OutputBatcher, StreamInputPump, writableSink } from './stream-io.js';

/** A readable that may be a terminal (process.stdin, tty.ReadStream). */
type MaybeTty = Readable & { isTTY?: boolean; isRaw?: boolean; setRawMode?: (raw: boolean) => unknown };
/** A writable that may be a terminal: Node's tty.WriteStream makes its libuv handle's writes blocking. */
type MaybeTtyOut = Writable & { isTTY?: boolean; _handle?: { setBlocking?: (blocking: boolean) => unknown } };

/** Options of the stdio console: the streams (tests swap them), the Ctrl-A x escape, the output queue limit. */
export interface StdioConsoleOptions {
  input?: MaybeTty;
  output?: Writable;
  /** Ctrl-A x quits (calls onQuit); Ctrl-A Ctrl-A sends one Ctrl-A. Default: on when input is a terminal. */
  escape?: boolean;
  onQuit?: () => void;
  /** Output waiting in the stream beyond this is dropped (default 1 MiB). */
  maxQueued?: number;
  dropped?: DropCounter;
}

const CTRL_A = 0x01;

/**
 * The VMM's own stdin/stdout. When stdin is a terminal it is put in raw mode
 * (the guest sees every key, Ctrl-C included) and restored on close() and at
 * process exit.
 */
export class StdioConsole implements SerialConsole {
  readonly kind = 'stdio';
  private readonly input: MaybeTty;
  private readonly out: OutputBatcher;
  private readonly output: MaybeTtyOut;
  /** The terminal handle whose writes were made non-blocking while the console runs. */
  private unblocked: { setBlocking?: (blocking: boolean) => unknown } | undefined;
  private readonly escape: boolean;
  private readonly onQuit: () => void;
  private pump: StreamInputPump | undefined;
  private rawSet = false;
  private escapePending = false;
  private closed = false;
  private readonly restoreAtExit = (): void => this.restoreTerminal();

  constructor(opts: StdioConsoleOptions = {}) {
    this.input = opts.input ?? process.stdin;
    const output = opts.output ?? process.stdout;
    this.output = output;
    this.out = new OutputBatcher(writableSink(output, opts.maxQueued ?? 1 << 20, opts.dropped ?? (() => {})));
    this.escape = opts.escape ?? this.input.isTTY === true;
    this.onQuit = opts.onQuit ?? (() => {});
  }

  transmit(byte: number): void {
    if (!this.closed) this.out.push(byte);
  }

  connect(rx: SerialRxPort): void {
    if (this.closed || this.pump) return;
    if (this.input.isTTY && typeof this.input.setRawMode === 'function' && !this.input.isRaw) {
      this.input.setRawMode(true);
      this.rawSet = true;
      process.once('exit', this.restoreAtExit);
    }
    this.unblockOutput();
    this.pump = new StreamInputPump(this.input, rx, this.escape ? (b) => this.filterEscape(b) : undefined);
    this.pump.start();
  }

  /**
   * Node writes to a terminal synchronously: a terminal that stops reading (a paused pager, a stuck
   * serial line of the sandbox's L1) would block the main thread inside write(2), and with it every
   * vCPU exit the main thread serves. While the console runs, its terminal writes are queued instead
   * (libuv reopened the tty for this handle, so no other process or fd is affected), and output beyond
   * `maxQueued` is dropped and counted like any other stuck destination. Blocking again on close().
   */
  private unblockOutput(): void {
    const handle = this.output.isTTY ? this.output._handle : undefined;
    if (typeof handle?.setBlocking !== 'function') return;
    try {
      handle.setBlocking(false);
      this.unblocked = handle;
    } catch {
      /* keep blocking writes */
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.flush();
    try {
      this.unblocked?.setBlocking?.(true);
    } catch {
      /* the terminal is gone */
    }
    this.unblocked = undefined;
    this.pump?.stop();
    this.restoreTerminal();
    process.off('exit', this.restoreAtExit);
  }

  private restoreTerminal(): void {
    if (!this.rawSet) return;
    this.rawSet = false;
    try {
      this.input.setRawMode?.(false);
    } catch {
      /* terminal already gone */
    }
  }

  /** Strips the Ctrl-A escape sequences out of terminal input. */
  private filterEscape(bytes: Uint8Array): Uint8Array {
    const out: number[] = [];
    for (const b of bytes) {
      if (this.escapePending) {
        this.escapePending = false;
        if (b === 0x78 /* x */ || b === 0x58 /* X */) {
          queueMicrotask(() => this.onQuit());
          continue;
        }
        out.push(CTRL_A);
        if (b !== CTRL_A) out.push(b);
        continue;
      }
      if (b === CTRL_A) {
        this.escapePending = true;
        continue;
      }
      out.push(b);
    }
    return Uint8Array.from(out);
  }
}
