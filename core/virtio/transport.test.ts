import { expect } from 'chai';
import { VirtioTransportError } from './errors.js';
import { selectVirtioTransport, type VirtioAttachment, type VirtioTransportHost } from './transport.js';

function host(name: string): VirtioTransportHost {
  return {
    name,
    attachVirtioDevice: (): VirtioAttachment => expect.fail('not attached in these tests'),
  };
}

function refusal(f: () => unknown): VirtioTransportError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(VirtioTransportError);
    return e as VirtioTransportError;
  }
  return expect.fail('expected a VirtioTransportError');
}

describe('selectVirtioTransport', () => {
  const mmio = host('mmio');
  const pci = host('pci');

  it("the device's transport wins over the VM default; the VM default over 'the only one'", () => {
    expect(selectVirtioTransport([mmio, pci], { device: 'pci', vmDefault: 'mmio' }, 'disk1')).to.equal(pci);
    expect(selectVirtioTransport([mmio, pci], { vmDefault: 'mmio' }, 'disk1')).to.equal(mmio);
    expect(selectVirtioTransport([pci, mmio], { device: 'mmio' }, 'disk1')).to.equal(mmio);
  });

  it('without any name, a VM with one transport uses it (configs written before transports had names)', () => {
    expect(selectVirtioTransport([mmio], {}, 'disk1')).to.equal(mmio);
  });

  it('an unknown name is refused, naming the device, where the name came from and the transports present', () => {
    const e = refusal(() => selectVirtioTransport([mmio, pci], { device: 'pcie' }, 'disk1'));
    expect(e.kind).to.equal('UnknownTransport');
    expect(e.message).to.equal("disk1: unknown virtio transport 'pcie' (from its 'transport'); this VM has: mmio, pci");
    const v = refusal(() => selectVirtioTransport([mmio], { vmDefault: 'pci' }, 'net0'));
    expect(v.message).to.equal(
      "net0: unknown virtio transport 'pci' (from the VM's 'virtio.transport'); this VM has: mmio",
    );
  });

  it('several transports and no choice, none at all, or two with one name are refused', () => {
    expect(refusal(() => selectVirtioTransport([mmio, pci], {}, 'disk1')).message).to.match(
      /disk1: this VM has several virtio transports \(mmio, pci\); choose one with the device's 'transport'/,
    );
    expect(refusal(() => selectVirtioTransport([], { device: 'mmio' }, 'disk1')).kind).to.equal('NoTransport');
    expect(refusal(() => selectVirtioTransport([mmio, host('mmio')], {}, 'disk1')).kind).to.equal('DuplicateTransport');
  });
});
