import { RangeBus } from '../../core/bus/range-bus.js';
import type { Logger } from '../../core/logger.js';
import { RecordingInterrupts } from '../../core/testing/recording-interrupts.js';
import { PciConfigSpace } from './config/space.js';
import { PciFunction } from './function.js';
import { MsixTable } from './msix.js';
import { PciRootBus } from './root-bus.js';
import { GuestBusDriver } from './testing-guest.js';

/** A logger keeping warnings. */
export function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const l = {
    warnings,
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: (o: object | string, m?: string) => void warnings.push(typeof o === 'string' ? o : (m ?? '')),
    error: (o: object | string, m?: string) => void warnings.push(typeof o === 'string' ? o : (m ?? '')),
    child: () => l,
  };
  return l;
}

/** A function with a 4 KiB memory BAR 0 (a scratch register at 0, MSI-X at 0x800), a 64-bit BAR 2, an I/O BAR 4. */
export function testFunction(id: string, deviceId = 0x1042) {
  const config = new PciConfigSpace({
    vendorId: 0x1af4,
    deviceId,
    classCode: 0x018000,
    interruptPin: 1,
    bars: [
      { index: 0, kind: 'mmio32', size: 0x1000n },
      { index: 2, kind: 'mmio64', size: 0x4000n, prefetchable: true },
      { index: 4, kind: 'io', size: 0x20n },
    ],
  });
  const fn = new PciFunction(id, config);
  const msix = new MsixTable(config, { vectors: 2, tableBar: 0, tableOffset: 0x800, pbaBar: 0, pbaOffset: 0xc00 });
  fn.addBarRegion(msix.tableRegion);
  fn.addBarRegion(msix.pbaRegion);
  const scratch = new Uint8Array(8);
  fn.addBarRegion(0, 0n, 8n, {
    read: (o, d) => d.set(scratch.subarray(Number(o), Number(o) + d.length)),
    write: (o, d) => scratch.set(d, Number(o)),
  });
  fn.addBarRegion(4, 0n, 0x20n, { read: (o, d) => d.fill(Number(o) + 0x40), write: () => undefined });
  return { fn, config, msix };
}

/** A root bus over a real RangeBus and the Interrupts double, with a guest driver for its ECAM window. */
export function setup() {
  const irq = new RecordingInterrupts();
  const bus = new RangeBus();
  const logger = recordingLogger();
  let running = false;
  const root = new PciRootBus({ bus, resources: irq.resources, interrupts: irq, logger, running: () => running });
  const guest = new GuestBusDriver(bus, root.ecam!.start);
  return { irq, bus, root, guest, logger, setRunning: (r: boolean) => (running = r) };
}
