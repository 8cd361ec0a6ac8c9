/** Counters of the i8042 controller. */
export class I8042Metrics {
  /** CPU reset requests (command 0xFE / output-port reset line). */
  resetRequests = 0;
  /** Controller commands the model does not know (ignored). */
  unknownCommands = 0;
  /** Keyboard commands answered with RESEND (unknown). */
  unknownKeyboardCommands = 0;
  /** Output bytes dropped because the guest did not read them (queue full). */
  outputDropped = 0;
  /** Accesses wider than a byte (only the first byte is used). */
  oddAccesses = 0;
  irqErrors = 0;

  toJSON(): Record<string, number> {
    return {
      resetRequests: this.resetRequests,
      unknownCommands: this.unknownCommands,
      unknownKeyboardCommands: this.unknownKeyboardCommands,
      outputDropped: this.outputDropped,
      oddAccesses: this.oddAccesses,
      irqErrors: this.irqErrors,
    };
  }
}
