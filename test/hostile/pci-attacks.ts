/**
 * What the hostile-guest program for PCI (hosts/guestkit/tools/hostile-pci.c) must print for each attack on the
 * cloud host: the unit test (pci-attacks.test.ts) replays the attacks register by register against the real root
 * bus, virtio-pci function and hotplug controller; the linux test (hostile-pci.linux.test.ts) reads the same keys
 * from the program's output inside a real guest. A RegExp where the value depends on the guest's layout.
 */

/** The program's key -> the value the VMM must lead to. */
export const PCI_ATTACKS: Readonly<Record<string, string | RegExp>> = {
  'pci-ecam': /^[0-9a-f]+ segment:0 buses:0-0$/,
  'pci-victim-id': '10421af4', // 1af4:1042, virtio-blk
  'pci-witness-id': '10421af4',
  'pci-hostbridge-id': '0d578086',
  // ids, class, header type, capabilities pointer, every capability's id and next byte, pin: read only
  'pci-ro': 'kept',
  // BAR 0 (64-bit prefetchable, 64 KiB) answers the sizing probe; BARs 2..5 and the ROM are not implemented
  'pci-sizing': 'ffff000c,ffffffff,00000000,00000000,00000000,00000000,rom:00000000',
  // every offset with sizes 1/2/4, aligned or not, all ones then zeros (ECAM and 0xCF8): the capability list, the
  // ids and the device are intact afterwards
  'pci-sweep': 'kept',
  'pci-sweep-answers': 'yes',
  'pci-hostbridge': 'kept', // every byte of the host bridge written: ids kept, no BAR appears
  'pci-absent': 'ffffffff', // functions, devices and buses that do not exist; CONFIG_ADDRESS oddities
  'pci-cf8-odd': 'ffffffff', // 4 bytes from 0xCFD
  'pci-cf8-victim': '10421af4', // mechanism #1 still works after the oddities (0xCF9 reset byte included)
  'pci-mark': '0001',
  // BAR 0 moved (decode on): over RAM, the witness's BAR, the ECAM window, the LAPIC, the IOAPIC, above 2^52,
  // wrapping 2^64, the sizing pattern, 0: unmapped (the original place answers all ones), the holder still
  // answers at its place, and the BAR works again when moved back
  'pci-move-ram': 'unmapped:-:back',
  'pci-move-witness': 'unmapped:holder:back',
  'pci-move-ecam': 'unmapped:holder:back',
  'pci-move-lapic': 'unmapped:holder:back',
  'pci-move-ioapic': 'unmapped:-:back',
  'pci-move-above-2-52': 'unmapped:-:back',
  'pci-move-wrap': 'unmapped:-:back',
  'pci-move-sizing': 'unmapped:-:back',
  'pci-move-zero': 'unmapped:-:back',
  'pci-move-self-plus': /^unmapped:(victim|other):back$/, // the next 64 KiB: free (moved) or another BAR's
  'pci-rom': '00000000',
  'v-good-before': 'used:0:VICTIM!!',
  // queue_select past the queues: size 0, NO_VECTOR, not enabled, layout writes refused
  'v-qsel': '0/ffff/0/0,0/ffff/0/0,0/ffff/0/0,0/ffff/0/0,',
  'v-vectors': 'ffff,ffff', // msix_config / queue_msix_vector outside the table read back NO_VECTOR
  'v-featsel': '00000000:0b', // feature words past 1 read 0 and take nothing; FEATURES_OK still sticks
  // DRIVER_OK without FEATURES_OK; FEATURES_OK without VERSION_1; bits cleared without reset; NEEDS_RESET
  // written by the driver; 0xff (FAILED added)
  'v-status': '00,03,0f,0f,8f',
  'v-relayout': 'used:0:10', // size and addresses written after queue_enable and after DRIVER_OK: ignored
  'v-notify': 'silent:used:0', // notifies at wrong offsets, widths and queues start nothing
  'v-notify-storm': 'used:0',
  // ISR of 4 bytes / at +1 / +2, device configuration across its page's end, unaligned, past its size; capacity
  // before and after writes of all ones
  'v-odd': '0,0,0,0,8,0,0:2048:2048',
  // the PCI configuration access capability: num_queues through the window; windows past the BAR, of 3 bytes,
  // unaligned, on another BAR or at 2^32 - 1 leave the data register as written
  'v-pcicfg': '1,kept',
  'v-loop': 'needs-reset',
  // memory decode and bus mastering off right after a kick: the BAR is gone (all ones); the device stops unless
  // the request completed first (a race in a real guest), and after decode and bus mastering are back on it reads
  // DEVICE_NEEDS_RESET (no DMA, no MSI-X without bus mastering)
  'v-decode-off': /^ffff:(used:0|later-needs-reset)$/,
  'v-good-after-decode': 'used:0:VICTIM!!',
  'm-msi-cap': 'none',
  'm-cap': 'vectors:2 table:4000 pba:c000',
  // bytes, words, unaligned dwords and a qword into entries 0 and 1: reserved bits and address bits 1:0 stay 0
  'm-odd': 'a3ffffa0,345678a4,abaaa912,00000000;cafebabc,deadbeef,00000000,00000000',
  'm-past': '00000000,00000000', // past the table and into the PBA: nothing sticks
  'm-pending': 'used:0:1:0', // a masked vector's interrupt is pending in the PBA, delivered at unmask
  'm-garbage': 'used:0:used:0:0', // messages outside 0xFEExxxxx and with garbage high bits
  'm-storm': '8001:0', // function mask, entry mask and enable toggled under interrupts
  'm-novector': 'used:0:0', // MSI-X on, no vector: no interrupt, no ISR bit
  'm-qvec-past': 'ffff',
  'h-storm': 'seg:7 odd:0 pseg:0 b0ej:0', // eject storms on present and empty slots, bad segment, odd sizes
  // PM1 status written with ones, enable garbage, SLP_EN with every sleep type but S5, odd sizes: ignored; the
  // guest's enable and control words come back as it wrote them, no status bit appears
  'a-pm1': 'en:kept ctl:0001 sts:0000',
  'v-good-after': 'used:0:VICTIM!!',
};

/** Most VMM log lines about refusals the whole program may cause (each kind is rate limited). */
export const PCI_LOG_BOUND = 200;
