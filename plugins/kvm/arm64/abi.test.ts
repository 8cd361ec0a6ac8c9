import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fieldAt, leafPaths } from '../abi/layout.js';
import { kvm_run } from '../abi/structs.js';
import { EXIT, SYSTEM_EVENT } from '../abi/ioctls.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';
import * as A from './abi.js';

/** Debian's arm64 uapi headers (package linux-libc-dev-arm64-cross): asm/kvm.h of aarch64. */
const ARM64_INCLUDE = '/usr/aarch64-linux-gnu/include';

/** kvm_run members the arm64 runner reads (the debug exit's arch part differs per arch and is left out). */
const KVM_RUN_PATHS = [
  'exit_reason',
  'immediate_exit',
  'mmio.phys_addr',
  'mmio.data',
  'mmio.len',
  'mmio.is_write',
  'system_event.type',
  'system_event.ndata',
  'system_event.data',
  'internal.suberror',
];

/**
 * Compiles, with the host's gcc, a program over the arm64 <linux/kvm.h>, printing every number and offset.
 * Both ABIs are LP64 with the same sizes and alignments for these types (__u64 8, __uint128_t 16), so the
 * host compiler lays the arm64 structs out as an aarch64 compiler would.
 */
function measure(): Map<string, bigint> {
  const p = (key: string, expr: string) => `printf("${key} %llu\\n", (unsigned long long)(${expr}));`;
  // SZ_64K is the kernel's <linux/sizes.h>, which the uapi header uses without including
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#define SZ_64K 0x10000', '#include <linux/kvm.h>'];
  lines.push('int main(void) {');
  for (const [name, def] of Object.entries(A.ARM64_STRUCTS)) {
    lines.push(p(`size ${name}`, `sizeof(struct ${name})`));
    for (const f of leafPaths(def)) lines.push(p(`off ${name}.${f}`, `offsetof(struct ${name}, ${f})`));
  }
  for (const f of KVM_RUN_PATHS) lines.push(p(`off kvm_run.${f}`, `offsetof(struct kvm_run, ${f})`));
  for (const k of Object.keys(A.KVM_ARM64)) lines.push(p(`ioctl ${k}`, `KVM_${k}`));
  for (const k of Object.keys(A.KVM_CAP_ARM64)) lines.push(p(`cap ${k}`, k));
  for (const k of Object.keys(A.ARM_VCPU_FEATURE)) lines.push(p(`feature ${k}`, `KVM_ARM_VCPU_${k}`));
  for (const f of Object.keys(A.KVM_REGS_OFFSET)) lines.push(p(`regs ${f}`, `offsetof(struct kvm_regs, ${f})`));
  const c: Record<string, string> = {
    'dev ARM_VGIC_V2': 'KVM_DEV_TYPE_ARM_VGIC_V2',
    'dev ARM_VGIC_V3': 'KVM_DEV_TYPE_ARM_VGIC_V3',
    'dev ARM_VGIC_ITS': 'KVM_DEV_TYPE_ARM_VGIC_ITS',
    'vgic GRP_ADDR': 'KVM_DEV_ARM_VGIC_GRP_ADDR',
    'vgic GRP_NR_IRQS': 'KVM_DEV_ARM_VGIC_GRP_NR_IRQS',
    'vgic GRP_CTRL': 'KVM_DEV_ARM_VGIC_GRP_CTRL',
    'vgic CTRL_INIT': 'KVM_DEV_ARM_VGIC_CTRL_INIT',
    'vgic V3_ADDR_TYPE_DIST': 'KVM_VGIC_V3_ADDR_TYPE_DIST',
    'vgic V3_ADDR_TYPE_REDIST': 'KVM_VGIC_V3_ADDR_TYPE_REDIST',
    'vgic ITS_ADDR_TYPE': 'KVM_VGIC_ITS_ADDR_TYPE',
    'vgic V3_DIST_SIZE': 'KVM_VGIC_V3_DIST_SIZE',
    'vgic V3_REDIST_SIZE': 'KVM_VGIC_V3_REDIST_SIZE',
    'vgic V3_ITS_SIZE': 'KVM_VGIC_V3_ITS_SIZE',
    'irq TYPE_SHIFT': 'KVM_ARM_IRQ_TYPE_SHIFT',
    'irq VCPU_SHIFT': 'KVM_ARM_IRQ_VCPU_SHIFT',
    'irq TYPE_CPU': 'KVM_ARM_IRQ_TYPE_CPU',
    'irq TYPE_SPI': 'KVM_ARM_IRQ_TYPE_SPI',
    'irq TYPE_PPI': 'KVM_ARM_IRQ_TYPE_PPI',
    'reg ARM64': 'KVM_REG_ARM64',
    'reg SIZE_U32': 'KVM_REG_SIZE_U32',
    'reg SIZE_U64': 'KVM_REG_SIZE_U64',
    'reg SIZE_U128': 'KVM_REG_SIZE_U128',
    'reg ARM_CORE': 'KVM_REG_ARM_CORE',
    'reg ARM64_SYSREG': 'KVM_REG_ARM64_SYSREG',
    'regid pc': 'KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc)',
    'regid pstate': 'KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pstate)',
    'regid sp': 'KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.sp)',
    'regid x0': 'KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[0])',
    'regid x30': 'KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[30])',
    'regid mpidr': 'ARM64_SYS_REG(3, 0, 0, 0, 5)',
    'regid timer_cnt': 'KVM_REG_ARM_TIMER_CNT',
    'pstate MODE_EL1h': 'PSR_MODE_EL1h',
    'pstate F': 'PSR_F_BIT',
    'pstate I': 'PSR_I_BIT',
    'pstate A': 'PSR_A_BIT',
    'pstate D': 'PSR_D_BIT',
    'exit MMIO': 'KVM_EXIT_MMIO',
    'exit SYSTEM_EVENT': 'KVM_EXIT_SYSTEM_EVENT',
    'sysev SHUTDOWN': 'KVM_SYSTEM_EVENT_SHUTDOWN',
    'sysev RESET': 'KVM_SYSTEM_EVENT_RESET',
    'sysev CRASH': 'KVM_SYSTEM_EVENT_CRASH',
  };
  for (const [k, expr] of Object.entries(c)) lines.push(p(k, expr));
  lines.push('return 0; }');
  const dir = mkdtempSync(join(tmpdir(), 'kvm-arm64-'));
  try {
    writeFileSync(join(dir, 'l.c'), lines.join('\n'));
    execFileSync('gcc', ['-I', ARM64_INCLUDE, '-o', join(dir, 'l'), join(dir, 'l.c')], {
      timeout: 60_000,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const out = execFileSync(join(dir, 'l'), { timeout: 10_000 }).toString();
    const m = new Map<string, bigint>();
    for (const l of out.trim().split('\n')) {
      const i = l.lastIndexOf(' ');
      m.set(l.slice(0, i), BigInt(l.slice(i + 1)));
    }
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('kvm arm64 ABI', () => {
  it('encodes SPI lines, core and system register ids', () => {
    expect(A.spiIrqLine(1)).to.equal(0x01000021);
    expect(() => A.spiIrqLine(-1)).to.throw(RangeError);
    expect(A.xRegId(1) - A.xRegId(0)).to.equal(2n);
    expect(() => A.xRegId(31)).to.throw(RangeError);
    expect(() => A.coreRegId(3)).to.throw(RangeError);
    expect(A.ARM64_REG.mpidr).to.equal(0x603000000013c005n);
    expect(A.PSTATE.BOOT).to.equal(A.PSTATE.MODE_EL1h | A.PSTATE.D | A.PSTATE.A | A.PSTATE.I | A.PSTATE.F);
  });

  describe('against gcc and the arm64 <linux/kvm.h>', function () {
    let m: Map<string, bigint>;
    const n = (key: string): number => {
      const v = m.get(key);
      if (v === undefined) throw new Error(`gcc printed no '${key}'`);
      return Number(v);
    };
    before(function () {
      if (!existsSync(join(ARM64_INCLUDE, 'asm/kvm.h')))
        skipUnlessCi(this, `${ARM64_INCLUDE}/asm/kvm.h is missing (Debian linux-libc-dev-arm64-cross)`);
      this.timeout(90_000);
      try {
        execFileSync('gcc', ['--version'], { stdio: 'ignore' });
      } catch {
        skipUnlessCi(this, 'gcc is not installed (Debian gcc, libc6-dev)');
      }
      m = measure();
    });

    it('struct sizes and member offsets', () => {
      for (const [name, def] of Object.entries(A.ARM64_STRUCTS)) {
        expect(def.size, `sizeof(${name})`).to.equal(n(`size ${name}`));
        for (const f of leafPaths(def)) expect(fieldAt(def, f).offset, `${name}.${f}`).to.equal(n(`off ${name}.${f}`));
      }
    });
    it('the generic kvm_run members the arm64 runner reads', () => {
      for (const f of KVM_RUN_PATHS) expect(fieldAt(kvm_run, f).offset, f).to.equal(n(`off kvm_run.${f}`));
      expect(EXIT.MMIO).to.equal(n('exit MMIO'));
      expect(EXIT.SYSTEM_EVENT).to.equal(n('exit SYSTEM_EVENT'));
      expect(SYSTEM_EVENT.SHUTDOWN).to.equal(n('sysev SHUTDOWN'));
      expect(SYSTEM_EVENT.RESET).to.equal(n('sysev RESET'));
      expect(SYSTEM_EVENT.CRASH).to.equal(n('sysev CRASH'));
    });
    it('every ioctl number, capability and feature bit', () => {
      for (const [k, v] of Object.entries(A.KVM_ARM64)) expect(v, `KVM_${k}`).to.equal(n(`ioctl ${k}`));
      for (const [k, v] of Object.entries(A.KVM_CAP_ARM64)) expect(v, k).to.equal(n(`cap ${k}`));
      for (const [k, v] of Object.entries(A.ARM_VCPU_FEATURE)) expect(v, k).to.equal(n(`feature ${k}`));
    });
    it('device types, vGIC attributes, IRQ line fields, PSTATE bits', () => {
      for (const [k, v] of Object.entries(A.DEV_TYPE)) expect(v, k).to.equal(n(`dev ${k}`));
      for (const [k, v] of Object.entries(A.VGIC)) expect(v, k).to.equal(n(`vgic ${k}`));
      for (const [k, v] of Object.entries(A.ARM_IRQ)) expect(v, k).to.equal(n(`irq ${k}`));
      for (const k of ['MODE_EL1h', 'F', 'I', 'A', 'D'] as const) expect(A.PSTATE[k], k).to.equal(n(`pstate ${k}`));
    });
    it('kvm_regs offsets and one-reg ids', () => {
      for (const [k, v] of Object.entries(A.KVM_REGS_OFFSET)) expect(v, k).to.equal(n(`regs ${k}`));
      for (const [k, v] of Object.entries(A.REG)) expect(v, k).to.equal(m.get(`reg ${k}`));
      for (const k of ['pc', 'pstate', 'sp', 'x0', 'mpidr'] as const)
        expect(A.ARM64_REG[k], k).to.equal(m.get(`regid ${k}`));
      expect(A.xRegId(30)).to.equal(m.get('regid x30'));
      expect(A.sysRegId(3, 3, 14, 3, 2)).to.equal(m.get('regid timer_cnt'));
    });
  });
});
