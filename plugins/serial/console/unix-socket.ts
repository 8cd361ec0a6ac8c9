import * as fs from 'node:fs';
import * as net from 'node:net';
import { SerialError } from '../errors.js';
import type { DropCounter, SerialConsole, SerialRxPort } from './console.js';
import { OutputBatcher, StreamInputPump, writableSink } from './stream-io.js';

/** Options of the unix-socket console: how much output may wait for a client, and where drops are counted. */
export interface UnixSocketConsoleOptions {
  /** Output waiting for the client beyond this is dropped (default 1 MiB). */
  maxQueued?: number;
  dropped?: DropCounter;
}

/**
 * Listens on a unix socket; the first client to connect gets the console's
 * input and output, later clients are turned away until it leaves. Output with
 * no client connected is dropped (and counted).
 */
export class UnixSocketConsole implements SerialConsole {
  readonly kind = 'unix-socket';
  private readonly server: net.Server;
  private client: net.Socket | undefined;
  private pump: StreamInputPump | undefined;
  private rx: SerialRxPort | undefined;
  private readonly out: OutputBatcher;
  private readonly maxQueued: number;
  private readonly dropped: DropCounter;
  private listening = false;
  private closed = false;

  constructor(
    readonly path: string,
    opts: UnixSocketConsoleOptions = {},
  ) {
    this.maxQueued = opts.maxQueued ?? 1 << 20;
    this.dropped = opts.dropped ?? (() => {});
    this.out = new OutputBatcher((bytes) => {
      if (!this.client) {
        this.dropped(bytes.length);
        return;
      }
      writableSink(this.client, this.maxQueued, this.dropped)(bytes);
    });
    this.server = net.createServer((sock) => this.accept(sock));
  }

  /** Starts listening; a stale socket file at the path is replaced, any other file is an error. */
  async listen(): Promise<void> {
    try {
      const st = fs.lstatSync(this.path, { throwIfNoEntry: false });
      if (st && !st.isSocket()) {
        throw new SerialError('Backend', `serial socket path ${this.path} exists and is not a socket`, {
          path: this.path,
        });
      }
      if (st) fs.unlinkSync(this.path);
    } catch (err) {
      if (err instanceof SerialError) throw err;
      throw new SerialError(
        'Backend',
        `cannot prepare serial socket ${this.path}: ${(err as Error).message}`,
        { path: this.path },
        { cause: err },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new SerialError(
            'Backend',
            `cannot listen on serial socket ${this.path}: ${err.message}`,
            { path: this.path },
            { cause: err },
          ),
        );
      this.server.once('error', onError);
      this.server.listen(this.path, () => {
        this.server.off('error', onError);
        this.server.on('error', () => {
          /* later server errors end nothing; the VM keeps running */
        });
        this.listening = true;
        resolve();
      });
    });
  }

  transmit(byte: number): void {
    if (this.closed) return;
    this.out.push(byte);
  }

  connect(rx: SerialRxPort): void {
    this.rx = rx;
    if (this.client && !this.pump) this.startPump(this.client);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.flush();
    this.pump?.stop();
    this.client?.end();
    this.client = undefined;
    if (this.listening) {
      this.server.close();
      try {
        fs.unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    }
  }

  /** Whether a client currently holds the console (for tests). */
  get connected(): boolean {
    return this.client !== undefined;
  }

  private accept(sock: net.Socket): void {
    if (this.closed || this.client) {
      sock.end('serial console busy\n');
      return;
    }
    this.client = sock;
    sock.on('error', () => {
      /* reported through 'close' */
    });
    sock.on('close', () => {
      if (this.client !== sock) return;
      this.pump?.stop();
      this.pump = undefined;
      this.client = undefined;
    });
    if (this.rx) this.startPump(sock);
  }

  private startPump(sock: net.Socket): void {
    if (!this.rx) return;
    this.pump = new StreamInputPump(sock, this.rx);
    this.pump.start();
  }
}
