import type { SerialConsole, SerialRxPort } from './console.js';

/** No console: output is discarded, there is no input (Firecracker's boot-time setup). */
export class NullConsole implements SerialConsole {
  readonly kind = 'none';
  transmit(_byte: number): void {}
  connect(_rx: SerialRxPort): void {}
  close(): void {}
}
