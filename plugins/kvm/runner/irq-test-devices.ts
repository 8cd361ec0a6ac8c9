import type { BusDevice, Disposable } from '../../../core/bus/bus.js';
import type { MmioFastPath, MmioFastPathPublisher, SharedWord } from '../../../core/bus/fast-path.js';

/** Register offsets of the test devices: interrupt status (read) and ACK (write), as in virtio-mmio. */
export const IRQ_STATUS = 0x60,
  IRQ_ACK = 0x64;

const u32 = (d: Uint8Array): DataView => new DataView(d.buffer, d.byteOffset, d.byteLength);

/** Answers status reads, hands ACK writes to `ack`, logs every access that reaches it. */
abstract class StatusDevice implements BusDevice {
  log: string[] = [];
  abstract get status(): number;
  protected abstract ack(value: number): void;
  read(off: bigint, data: Uint8Array): void {
    this.log.push(`r${off.toString(16)}`);
    u32(data).setUint32(0, off === BigInt(IRQ_STATUS) ? this.status : 0, true);
  }
  write(off: bigint, data: Uint8Array): void {
    const v = u32(data).getUint32(0, true);
    this.log.push(`w${off.toString(16)}=${v}`);
    if (off === BigInt(IRQ_ACK)) this.ack(v);
  }
}

/** Interrupt status published as a read value, ACK queued (the transport before the shared word). */
export class IrqDevice extends StatusDevice implements MmioFastPathPublisher {
  fp: MmioFastPath | undefined;
  constructor(public status = 0) {
    super();
  }
  protected ack(v: number): void {
    this.status = (this.status & ~v) >>> 0;
    this.fp?.setReadValue(IRQ_STATUS, this.status);
  }
  raise(bit: number): void {
    this.status = (this.status | bit) >>> 0;
    this.fp?.setReadValue(IRQ_STATUS, this.status);
  }
  attachMmioFastPath(fp: MmioFastPath): Disposable {
    this.fp = fp;
    fp.setReadValue(IRQ_STATUS, this.status);
    fp.setWriteMode(IRQ_ACK, 'queue');
    return {
      dispose: () => {
        this.fp = undefined;
      },
    };
  }
}

/** Interrupt status in a word shared with the vCPU workers (the virtio-mmio transport now). */
export class SharedIrqDevice extends StatusDevice implements MmioFastPathPublisher {
  word: SharedWord | undefined;
  local: number;
  constructor(
    initial = 0,
    private readonly mask = 3,
  ) {
    super();
    this.local = initial;
  }
  get status(): number {
    return this.word ? this.word.load() : this.local;
  }
  protected ack(v: number): void {
    if (this.word) this.word.clear(v & this.mask);
    else this.local &= ~v & this.mask;
  }
  raise(bit: number): void {
    if (this.word) this.word.or(bit);
    else this.local |= bit;
  }
  attachMmioFastPath(fp: MmioFastPath): Disposable {
    this.word = fp.shareClearableWord?.(IRQ_STATUS, IRQ_ACK, this.mask, this.local) ?? this.word;
    return { dispose: () => undefined };
  }
}
