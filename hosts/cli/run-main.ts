import { main } from '../../core/cli/main.js';
import { registerGuestKitFiles } from '../guestkit/scheme.js';
import { registerApiCommands } from '../api/commands.js';

/**
 * Entry for bin/vmm.js: this repository's host. It serves `guestkit:*` boot files, `vmm run --sandbox`
 * (hosts/sandbox) and the API (hosts/api: `vmm run --api-socket`, `vmm serve`, `vmm remote`), each loaded only when
 * asked for, runs the CLI and exits with its code once output is flushed.
 */
registerGuestKitFiles();
const code = await main(process.argv, {
  runInSandbox: async (config) => (await import('../sandbox/index.js')).runVmInSandbox(config, { console: true }),
  commands: registerApiCommands,
  startApi: async (opts) => (await import('../api/cli.js')).startRunApi(opts),
});
process.exitCode = code;
// A VM leaves no handles behind after dispose; exit explicitly in case a plugin leaked one.
setImmediate(() => process.exit(code));
