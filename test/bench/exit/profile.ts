/**
 * Profiling aid: `node --cpu-prof --cpu-prof-dir=/tmp/prof .build/<you>/test/bench/exit/profile.js [path] [exits]`
 * runs one measurement of our exit path (default inline, 50,000 exits) and prints µs per exit.
 */
import { measureOurs, type ExitPath } from './ours.js';

const path = (process.argv[2] ?? 'inline') as ExitPath;
const exits = Number(process.argv[3] ?? 50_000);
console.log(`${path}: ${(await measureOurs(path, exits)).toFixed(2)} µs/exit`);
