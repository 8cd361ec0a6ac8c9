import { expect } from 'chai';
import { OrderedDeviceRegistry } from './ordered-registry.js';
import { DeviceError } from './errors.js';

describe('OrderedDeviceRegistry', () => {
  it('add returns the Disposable that removes the device and destroys it once', async () => {
    const r = new OrderedDeviceRegistry();
    const destroyed: string[] = [];
    const dev = (id: string) => ({ id, destroy: async () => void destroyed.push(id) });
    const a = r.add(dev('a'));
    const b = r.add(dev('b'));
    expect(r.all().map((d) => d.id)).to.deep.equal(['a', 'b']);
    await b.dispose();
    await b.dispose();
    expect(destroyed).to.deep.equal(['b']);
    expect(r.get('b')).to.equal(undefined);
    expect(r.all().map((d) => d.id)).to.deep.equal(['a']);
    r.add(dev('b')); // the id is free again (hotplug)
    await a.dispose();
    expect(destroyed).to.deep.equal(['b', 'a']);
    expect(r.all().map((d) => d.id)).to.deep.equal(['b']);
  });

  it('refuses a second device with the same id', () => {
    const r = new OrderedDeviceRegistry();
    r.add({ id: 'x' });
    expect(() => r.add({ id: 'x' })).to.throw(DeviceError, "'x'");
  });
});
