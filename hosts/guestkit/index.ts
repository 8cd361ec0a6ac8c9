export {
  guestKit,
  defaultCacheDir,
  KIT_VERSION,
  scriptInitramfs,
  writeInitramfsWithScript,
  bzImageVersion,
  type GuestKit,
  type GuestKitOptions,
} from './kit.js';
export { Markers, parseGuestOutput, type GuestOutput } from './markers.js';
export { extractVmlinux, parseSetupHeader, decompressPayload, detectCompression } from './bzimage.js';
export { inspectElf, XEN_ELFNOTE_PHYS32_ENTRY } from './elf.js';
export { CpioBuilder, parseCpio } from './cpio.js';
export { GuestKitError } from './errors.js';
export { initScript } from './init-script.js';
