import { expect } from 'chai';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { HotplugError } from '../../core/vmm/hotplug.js';
import { ApiError } from '../../hosts/api/errors.js';
import { defaultExtensions } from '../../hosts/api/extensions.js';

const vmWith = (add: () => Promise<{ id: string }>, remove: () => Promise<void>) =>
  ({ addDevice: add, removeDevice: remove }) as unknown as AssembledVm;

const rejection = async (p: Promise<unknown>): Promise<ApiError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('resolved');
};

describe('api extensions: C2 runtime devices', () => {
  const ext = defaultExtensions();

  it("hands the entry to the VM's addDevice / removeDevice", async () => {
    const seen: unknown[] = [];
    const vm = vmWith(
      async () => ({ id: 'disk1' }),
      async () => void seen.push('removed'),
    );
    expect(await ext.addDevice!(vm, { name: 'virtio-blk', id: 'disk1', config: { path: '/d' } })).to.deep.equal({
      id: 'disk1',
    });
    await ext.removeDevice!(vm, 'disk1');
    expect(seen).to.deep.equal(['removed']);
  });

  it("answers hotplug errors with CH's statuses: an id in use 409, an unknown device 404, a bad entry 400", async () => {
    const fail = (kind: 'Duplicate' | 'UnknownDevice' | 'BadConfig' | 'Attach') => async () => {
      throw new HotplugError(kind, `${kind} happened`);
    };
    expect((await rejection(ext.addDevice!(vmWith(fail('Duplicate'), fail('Attach')), { name: 'x' }))).status).to.equal(
      409,
    );
    expect((await rejection(ext.removeDevice!(vmWith(fail('Attach'), fail('UnknownDevice')), 'x'))).status).to.equal(
      404,
    );
    const bad = await rejection(ext.addDevice!(vmWith(fail('BadConfig'), fail('Attach')), { name: 'x' }));
    expect(bad.status).to.equal(400);
    expect(bad.body()).to.deep.equal(['Bad Request', 'BadConfig happened']);
    expect((await rejection(ext.addDevice!(vmWith(fail('Attach'), fail('Attach')), { name: 'x' }))).status).to.equal(
      500,
    );
  });
});
