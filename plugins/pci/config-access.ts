import type { BusDevice } from '../../core/bus/bus.js';

/** The ports of configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 (4 bytes), CONFIG_DATA at 0xCFC..0xCFF. */
export const CONFIG_ADDRESS_PORT = 0xcf8;
/** Ports the mechanism decodes (0xCF8..0xCFF). */
export const CONFIG_PORTS = 8;
/** Bytes of ECAM space per bus: 32 devices x 8 functions x 4 KiB. */
export const ECAM_BUS_SIZE = 1n << 20n;

/** What a configuration access mechanism reaches: functions by bus, device, function and register. */
export interface ConfigSpaceAccess {
  /** A configuration read; all ones where no function answers. `via` names the mechanism for logs. */
  configRead(bus: number, device: number, fn: number, offset: number, size: number, via: string): number;
  /** A configuration write; ignored where no function answers. */
  configWrite(bus: number, device: number, fn: number, offset: number, size: number, value: number, via: string): void;
}

const ones = (size: number): number => (size >= 4 ? 0xffff_ffff : 2 ** (8 * size) - 1);

function toValue(data: Uint8Array): number {
  let v = 0;
  for (let i = data.length - 1; i >= 0; i--) v = v * 256 + data[i];
  return v;
}

function fromValue(value: number, data: Uint8Array): void {
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
}

/**
 * Configuration mechanism #1 (PCI 3.0, 3.2.2.3.2) on ports 0xCF8..0xCFF: a dword write to 0xCF8 sets
 * CONFIG_ADDRESS (bit 31 enable, bus 23:16, device 15:11, function 10:8, register 7:2), and accesses of
 * 1, 2 or 4 bytes to 0xCFC..0xCFF reach that function's register plus the port's offset. With the
 * enable bit clear data reads all ones. Byte and word accesses to 0xCF8..0xCFB are not CONFIG_ADDRESS
 * (0xCF9 is a chipset's reset register elsewhere): they read all ones and are ignored.
 */
export class PortConfigAccess implements BusDevice {
  private address = 0;

  constructor(private readonly target: ConfigSpaceAccess) {}

  read(offset: bigint, data: Uint8Array): void {
    const o = Number(offset);
    if (o === 0 && data.length === 4) return fromValue(this.address >>> 0, data);
    if (o < 4 || !this.enabled) return void data.fill(0xff);
    const a = this.address;
    fromValue(
      this.target.configRead(
        (a >>> 16) & 0xff,
        (a >>> 11) & 0x1f,
        (a >>> 8) & 7,
        (a & 0xfc) + o - 4,
        data.length,
        'cf8',
      ),
      data,
    );
  }

  write(offset: bigint, data: Uint8Array): void {
    const o = Number(offset);
    if (o === 0 && data.length === 4) {
      this.address = toValue(data) & 0x80ff_fffc;
      return;
    }
    if (o < 4 || !this.enabled) return;
    const a = this.address;
    this.target.configWrite(
      (a >>> 16) & 0xff,
      (a >>> 11) & 0x1f,
      (a >>> 8) & 7,
      (a & 0xfc) + o - 4,
      data.length,
      toValue(data),
      'cf8',
    );
  }

  private get enabled(): boolean {
    return (this.address & 0x8000_0000) !== 0;
  }
}

/**
 * The Enhanced Configuration Access Mechanism (PCI Express Base, 7.2.2): a memory window where bus b,
 * device d, function f, register r is at (b << 20) | (d << 15) | (f << 12) | r from the window's base
 * (which the MCFG table gives the guest). 8-byte accesses are split into two dword accesses.
 */
export class EcamConfigAccess implements BusDevice {
  constructor(
    private readonly target: ConfigSpaceAccess,
    private readonly startBus = 0,
  ) {}

  read(offset: bigint, data: Uint8Array): void {
    if (data.length === 8) {
      this.read(offset, data.subarray(0, 4));
      this.read(offset + 4n, data.subarray(4));
      return;
    }
    const [bus, dev, fn, reg] = this.decode(offset);
    fromValue(this.target.configRead(bus, dev, fn, reg, data.length, 'ecam'), data);
  }

  write(offset: bigint, data: Uint8Array): void {
    if (data.length === 8) {
      this.write(offset, data.subarray(0, 4));
      this.write(offset + 4n, data.subarray(4));
      return;
    }
    const [bus, dev, fn, reg] = this.decode(offset);
    this.target.configWrite(bus, dev, fn, reg, data.length, toValue(data), 'ecam');
  }

  private decode(offset: bigint): [number, number, number, number] {
    const o = Number(offset);
    return [this.startBus + Math.floor(o / 2 ** 20), (o >>> 15) & 0x1f, (o >>> 12) & 7, o & 0xfff];
  }
}

export { ones as allOnes };
