export { detectHost, describeKvmHost, type HostInfo, type KvmHostKind } from './detect.js';
export {
  runInSandbox,
  checkSandboxTools,
  projectLayout,
  SANDBOX_OUT,
  type SandboxOptions,
  type SandboxResult,
} from './sandbox.js';
export { bootVm, describeBoot, qemuArgv, type BootOptions, type BootResult } from './boot.js';
export { runVmInSandbox } from './run-vm.js';
export { SandboxError } from './errors.js';
