import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAcpiTables } from './acpi.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';

const iasl = spawnSync('sh', ['-c', 'command -v iasl'], { encoding: 'utf8' }).stdout.trim();

/** Disassembles one table with ACPICA's iasl and returns the ASL text. */
function disassemble(table: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-iasl-'));
  try {
    writeFileSync(join(dir, 'dsdt.dat'), table);
    const r = spawnSync(iasl, ['-d', join(dir, 'dsdt.dat')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, `iasl -d failed: ${r.stdout}${r.stderr}`).to.equal(0);
    return readFileSync(join(dir, 'dsdt.dsl'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function dsdtOf(image: Uint8Array, rsdp: bigint): Uint8Array {
  // FADT -> X_DSDT, offsets relative to the image base (= rsdp).
  const dv = new DataView(image.buffer, image.byteOffset);
  const xsdt = Number(dv.getBigUint64(24, true) - rsdp);
  const fadt = Number(dv.getBigUint64(xsdt + 36, true) - rsdp);
  const dsdt = Number(dv.getBigUint64(fadt + 140, true) - rsdp);
  return image.subarray(dsdt, dsdt + dv.getUint32(dsdt + 4, true));
}

describe('x86 DSDT, read back by ACPICA (iasl -d)', function () {
  this.timeout(60_000);
  before(function () {
    if (!iasl) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
  });

  it('describes each virtio-mmio window as an LNRO0005 device with its memory and interrupt', () => {
    const devices = [
      { base: 0xd0001000n, size: 0x1000n, gsi: 5 },
      { base: 0xd0002000n, size: 0x1000n, gsi: 6 },
    ];
    const t = buildAcpiTables({ vcpus: 2, mmioDevices: devices });
    const asl = disassemble(dsdtOf(t.image, t.rsdp));
    expect(asl).to.match(/Device \(GSIS\)/);
    expect(asl).to.match(/Name \(\\_S5, Package \(0x04\)/);
    for (const [i, d] of devices.entries()) {
      const node = new RegExp(
        `Device \\(VR0${i}\\)\\s*\\{\\s*Name \\(_HID, "LNRO0005"\\)[^\\n]*\\s*Name \\(_UID, [^)]*\\)[^\\n]*\\s*Name \\(_CRS, ResourceTemplate \\(\\)[^\\n]*\\s*\\{\\s*` +
          `Memory32Fixed \\(ReadWrite,\\s*0x${d.base.toString(16).toUpperCase()},[^\\n]*\\s*0x0*1000,[^\\n]*\\s*\\)\\s*` +
          `Interrupt \\(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \\)\\s*\\{\\s*0x0*${d.gsi.toString(16).toUpperCase()},`,
      );
      expect(asl).to.match(node);
    }
  });

  it('keeps a valid AML stream with many devices (multi-byte package lengths)', () => {
    const devices = Array.from({ length: 120 }, (_, i) => ({
      base: 0xd0001000n + BigInt(i) * 0x1000n,
      size: 0x1000n,
      gsi: 5 + (i % 18),
    }));
    const asl = disassemble(
      dsdtOf(
        buildAcpiTables({ vcpus: 1, mmioDevices: devices }).image,
        buildAcpiTables({ vcpus: 1, mmioDevices: devices }).rsdp,
      ),
    );
    expect(asl.match(/"LNRO0005"/g)).to.have.length(120);
    expect(asl).to.match(/Device \(VR77\)/);
  });
});
