import { expect } from 'chai';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus } from './constants.js';
import { DeviceNegotiation } from './status.js';

const { ACKNOWLEDGE: ACK, DRIVER, FEATURES_OK, DRIVER_OK, DEVICE_NEEDS_RESET, FAILED } = DeviceStatus;

describe('DeviceNegotiation (status state machine and features)', () => {
  const offered = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | 1n;

  function toFeatures(n: DeviceNegotiation, f: bigint): void {
    n.writeStatus(ACK);
    n.writeStatus(ACK | DRIVER);
    n.setDriverFeatureWord(0, Number(f & 0xffff_ffffn));
    n.setDriverFeatureWord(1, Number(f >> 32n));
  }

  it('walks ACKNOWLEDGE -> DRIVER -> FEATURES_OK -> DRIVER_OK and asks for activation once', () => {
    const n = new DeviceNegotiation(offered);
    toFeatures(n, VIRTIO_F_VERSION_1 | 1n);
    expect(n.writeStatus(ACK | DRIVER | FEATURES_OK)).to.deep.equal({ action: 'none' });
    expect(n.driverFeatures).to.equal(VIRTIO_F_VERSION_1 | 1n);
    expect(n.queuesConfigurable).to.equal(true);
    expect(n.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK)).to.deep.equal({ action: 'activate' });
    expect(n.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK)).to.deep.equal({ action: 'none' });
    expect(n.queuesConfigurable).to.equal(false);
  });

  it('reads offered features in 32-bit words; selectors above 1 read 0', () => {
    const n = new DeviceNegotiation(offered);
    expect(n.deviceFeatureWord(0)).to.equal(Number(offered & 0xffff_ffffn));
    expect(n.deviceFeatureWord(1)).to.equal(Number(offered >> 32n));
    expect(n.deviceFeatureWord(2)).to.equal(0);
    expect(n.deviceFeatureWord(0xffff_ffff)).to.equal(0);
  });

  it('refuses FEATURES_OK without VERSION_1 or with features not offered', () => {
    for (const f of [1n, VIRTIO_F_VERSION_1 | (1n << 40n)]) {
      const n = new DeviceNegotiation(offered);
      toFeatures(n, f);
      expect(n.writeStatus(ACK | DRIVER | FEATURES_OK).action).to.equal('ignored');
      expect(n.status & FEATURES_OK).to.equal(0);
    }
  });

  it('accepts feature writes only in the feature phase', () => {
    const n = new DeviceNegotiation(offered);
    expect(n.setDriverFeatureWord(1, 1)).to.equal(false); // before DRIVER
    toFeatures(n, VIRTIO_F_VERSION_1);
    expect(n.setDriverFeatureWord(2, 1)).to.equal(false);
    n.writeStatus(ACK | DRIVER | FEATURES_OK);
    expect(n.setDriverFeatureWord(0, 1)).to.equal(false); // after FEATURES_OK
    expect(n.driverFeatures).to.equal(VIRTIO_F_VERSION_1);
  });

  it('ignores bit clearing, skipped steps and a driver setting NEEDS_RESET; 0 resets', () => {
    const n = new DeviceNegotiation(offered);
    expect(n.writeStatus(DRIVER).action).to.equal('ignored');
    expect(n.writeStatus(DEVICE_NEEDS_RESET).action).to.equal('none');
    expect(n.status).to.equal(0);
    toFeatures(n, VIRTIO_F_VERSION_1);
    expect(n.writeStatus(ACK).action).to.equal('ignored');
    expect(n.writeStatus(ACK | DRIVER | DRIVER_OK).action).to.equal('ignored');
    expect(n.status).to.equal(ACK | DRIVER);
    expect(n.writeStatus(0)).to.deep.equal({ action: 'reset' });
    expect(n.status).to.equal(0);
    expect(n.driverFeatures).to.equal(0n);
  });

  it('keeps DEVICE_NEEDS_RESET until reset and refuses DRIVER_OK meanwhile', () => {
    const n = new DeviceNegotiation(offered);
    toFeatures(n, VIRTIO_F_VERSION_1);
    n.writeStatus(ACK | DRIVER | FEATURES_OK);
    n.markNeedsReset();
    expect(n.queuesConfigurable).to.equal(false);
    expect(n.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK).action).to.equal('ignored');
    expect(n.status & DEVICE_NEEDS_RESET).to.equal(DEVICE_NEEDS_RESET);
    n.writeStatus(ACK | DRIVER | FEATURES_OK | FAILED);
    expect(n.status & FAILED).to.equal(FAILED);
    n.writeStatus(0);
    expect(n.status).to.equal(0);
  });
});
