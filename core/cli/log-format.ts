/** pino's numeric levels and their names. */
const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const COLOURS: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

/** A value of a log line's extra fields, short and on one line. */
function show(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string')
    return JSON.stringify((v as { message: string }).message);
  return JSON.stringify(v) ?? String(v);
}

/**
 * One pino JSON line as a line for people: `12:03:04.567 INFO  kvm: kvm probed maxVcpus=710 ...`, the level coloured
 * when `colour`. A line that is not pino's JSON passes through unchanged.
 */
export function prettyLogLine(line: string, colour: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  if (typeof o !== 'object' || o === null) return `${line.trimEnd()}\n`;
  const { level, time, msg, module, plugin, pid: _pid, hostname: _host, ...rest } = o;
  const lv = typeof level === 'number' ? level : 30;
  const name = (LEVELS[lv] ?? String(level)).padEnd(5);
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const who = [...new Set([plugin, module].filter((x) => typeof x === 'string'))].join('/');
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
  const lvText = colour ? `\x1b[${COLOURS[lv] ?? '0'}m${name}\x1b[0m` : name;
  const text = [when, lvText, who ? `${who}:` : '', typeof msg === 'string' ? msg : '', extra].filter((s) => s !== '');
  return `${text.join(' ')}\n`;
}
