import { main } from './main.js';

/** Entry for bin/vmm.js: run the CLI and exit with its code once output is flushed. */
const code = await main(process.argv);
process.exitCode = code;
// A VM leaves no handles behind after dispose; exit explicitly in case a plugin leaked one.
setImmediate(() => process.exit(code));
