// `npm test` entry: node dist/test/runner/run-tiers.js [--tier unit|kvm|linux]...
import { main } from './tiers.js';

process.exitCode = await main(process.argv.slice(2));
