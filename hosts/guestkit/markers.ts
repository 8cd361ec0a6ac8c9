/** Lines the guest kit's /init prints on the serial console (each on a line of its own). */
export const Markers = {
  INIT_OK: 'TSVMM-INIT-OK',
  RESULT_BEGIN: 'TSVMM-RESULT-BEGIN',
  RESULT_END: 'TSVMM-RESULT-END',
  /** Followed by a space and the script's exit status. */
  EXIT: 'TSVMM-EXIT',
  /** /init saw the ACPI power button and is shutting the guest down (its poweroff follows). */
  POWER_BUTTON: 'TSVMM-POWER-BUTTON',
} as const;

/** What a guest's console output showed, parsed from the Markers lines. */
export interface GuestOutput {
  /** The init marker was seen: the kernel booted and /init ran. */
  initReached: boolean;
  /** Text the guest script printed between RESULT_BEGIN and RESULT_END (undefined if BEGIN never came). */
  result?: string;
  /** True when RESULT_END was seen (the script finished). */
  resultComplete: boolean;
  /** The script's exit status, when TSVMM-EXIT was seen. */
  exitCode?: number;
}

/** Parses a serial console transcript (CRLF or LF) for the kit's markers. */
export function parseGuestOutput(console: string): GuestOutput {
  const lines = console.split('\n').map((l) => l.replace(/\r$/, ''));
  const out: GuestOutput = { initReached: false, resultComplete: false };
  let collecting: string[] | undefined;
  for (const line of lines) {
    const t = line.trim();
    if (t === Markers.INIT_OK) {
      out.initReached = true;
      continue;
    }
    if (t === Markers.RESULT_BEGIN && collecting === undefined && out.result === undefined) {
      collecting = [];
      continue;
    }
    if (t === Markers.RESULT_END && collecting !== undefined) {
      out.result = collecting.join('\n');
      out.resultComplete = true;
      collecting = undefined;
      continue;
    }
    const m = /^TSVMM-EXIT (\d+)$/.exec(t);
    if (m && out.exitCode === undefined) {
      out.exitCode = Number(m[1]);
      continue;
    }
    if (collecting) collecting.push(line);
  }
  if (collecting !== undefined) out.result = collecting.join('\n');
  return out;
}
