/**
 * A handful of A64 instructions for hand-made arm64 test guests (the x86 counterpart is ../testing.ts's Asm):
 * move-wide immediates, a byte store, HVC (PSCI calls) and a branch to self. Encodings checked in
 * testing.test.ts against GNU as (aarch64-linux-gnu-as) output.
 */
export class A64 {
  private readonly words: number[] = [];

  private push(w: number): this {
    this.words.push(w >>> 0);
    return this;
  }

  /** `movz xN|wN, #imm16, lsl #shift` (shift 0/16/32/48; 32 and 48 only for x registers). */
  movz(rd: number, imm: number, shift = 0, x = true): this {
    return this.push(moveWide(x ? 0xd2800000 : 0x52800000, rd, imm, shift));
  }

  /** `movk xN|wN, #imm16, lsl #shift`. */
  movk(rd: number, imm: number, shift = 0, x = true): this {
    return this.push(moveWide(x ? 0xf2800000 : 0x72800000, rd, imm, shift));
  }

  /** Loads a 64-bit constant into xN (movz + movk per non-zero 16-bit part). */
  mov64(rd: number, value: bigint): this {
    let first = true;
    for (let shift = 0; shift < 64; shift += 16) {
      const part = Number((value >> BigInt(shift)) & 0xffffn);
      if (part === 0) continue;
      if (first) this.movz(rd, part, shift);
      else this.movk(rd, part, shift);
      first = false;
    }
    if (first) this.movz(rd, 0);
    return this;
  }

  /** `strb wT, [xN]`. */
  strb(rt: number, rn: number): this {
    return this.push(0x39000000 | (reg(rn) << 5) | reg(rt));
  }

  /** `hvc #imm16` (PSCI through the hypervisor). */
  hvc(imm = 0): this {
    return this.push(0xd4000002 | ((imm & 0xffff) << 5));
  }

  /** `b .` (spin). */
  spin(): this {
    return this.push(0x14000000);
  }

  /** The program, little-endian. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.words.length * 4);
    const v = new DataView(out.buffer);
    this.words.forEach((w, i) => v.setUint32(i * 4, w, true));
    return out;
  }
}

function reg(r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 30) throw new RangeError(`no register ${r}`);
  return r;
}

function moveWide(base: number, rd: number, imm: number, shift: number): number {
  if (!Number.isInteger(imm) || imm < 0 || imm > 0xffff) throw new RangeError(`immediate ${imm} is not 16 bits`);
  if (shift % 16 !== 0 || shift < 0 || shift > 48) throw new RangeError(`shift ${shift}`);
  return base | ((shift / 16) << 21) | (imm << 5) | reg(rd);
}

/** PSCI 0.2 function ids (SMC calling convention, 32-bit/64-bit). */
export const PSCI_FN = { CPU_ON_64: 0xc4000003, SYSTEM_OFF: 0x84000008, SYSTEM_RESET: 0x84000009 } as const;
