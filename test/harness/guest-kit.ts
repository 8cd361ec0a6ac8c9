/**
 * The guest side of the test harness, for test files that live beside the plugins they test (their linux-tier
 * files boot Debian's kernel from the project's guest kit). The kit and the sandbox belong to hosts/, which core/
 * and plugins/ never import, tests included: such tests take them from here, the harness, instead.
 */
export {
  guestKit,
  parseGuestOutput,
  writeInitramfsWithScript,
  type GuestKit,
  type GuestOutput,
} from '../../hosts/guestkit/index.js';
export { checkStressImage } from '../../hosts/guestkit/guest-blocks.js';
export { defaultCacheDir } from '../../hosts/guestkit/kit.js';
export { guestTool } from '../../hosts/guestkit/tools.js';
export { detectHost, projectLayout } from '../../hosts/sandbox/index.js';
