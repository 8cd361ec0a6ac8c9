import { expect } from 'chai';
import { z } from 'zod';
import { OrderedDeviceRegistry } from '../device/ordered-registry.js';
import { FakeSnapshottable, hostileStateProblems, roundTripState, withData } from '../testing/state.js';
import { MockHypervisor } from '../testing/mock-hypervisor.js';
import { bytes, u64 } from './codecs.js';
import { StateError } from './errors.js';
import { HypervisorVmSnapshot } from './hypervisor-state.js';
import { readSnapshot, restoreSnapshot, takeSnapshot } from './persist.js';
import { OrderedStateRegistry } from './registry.js';
import { defineState, isSnapshottable } from './snapshottable.js';
import { restoreVmState, saveVmState } from './vm-state.js';

const filled = (id: string, n: number): FakeSnapshottable => {
  const f = new FakeSnapshottable(id);
  f.counter = n;
  f.big = (1n << 63n) + BigInt(n); // above 2^53: must survive JSON
  f.blob = Uint8Array.of(n, 0, 255);
  return f;
};

describe('core/state', () => {
  describe('codecs', () => {
    it('save bigint as a decimal string and bytes as base64, and read them back', () => {
      const S = z.strictObject({ a: u64, b: bytes(4) });
      const v = { a: (1n << 64n) - 1n, b: Uint8Array.of(1, 2, 3) };
      const saved = S.encode(v);
      expect(saved).to.deep.equal({ a: '18446744073709551615', b: 'AQID' });
      expect(S.decode(JSON.parse(JSON.stringify(saved)))).to.deep.equal(v);
    });
    it('refuse what is not a u64 or too many bytes', () => {
      for (const bad of ['18446744073709551616', '-1', '01', '1.5', '', 'x'])
        expect(u64.safeDecode(bad).success, bad).to.equal(false);
      expect(bytes(3).safeDecode('AQIDBA==').success).to.equal(false);
      expect(bytes(3).safeDecode('AQI*').success).to.equal(false);
      expect(bytes(3).safeDecode('AQID').success).to.equal(true);
    });
  });

  describe('one object', () => {
    it('round-trips through JSON: the second save equals the first', () => {
      const to = new FakeSnapshottable('a');
      const { first, second, json } = roundTripState(filled('a', 7), to);
      expect(second).to.deep.equal(first);
      expect(first).to.deep.equal({
        id: 'a',
        version: 2,
        data: { counter: 7, big: '9223372036854775815', blob: 'BwD/' },
      });
      expect(json).to.not.match(/\d{19}[,}]/); // the u64 is a string in JSON
      expect(to.big).to.equal((1n << 63n) + 7n);
    });

    it('refuses hostile states with one StateError and changes nothing', () => {
      const target = filled('a', 3);
      const good = takeSnapshot(filled('a', 5));
      const hostile = [
        undefined,
        null,
        'x',
        [],
        { ...good, id: 'b' },
        { ...good, version: 0 },
        { ...good, version: 1.5 },
        { ...good, extra: 1 },
        { id: 'a', version: 2 },
        withData(good, (d) => ({ ...d, counter: -1 })),
        withData(good, (d) => ({ ...d, counter: 1001 })),
        withData(good, (d) => ({ ...d, big: '18446744073709551616' })),
        withData(good, (d) => ({ ...d, big: 12 })),
        withData(good, (d) => ({ ...d, blob: 'A'.repeat(4000) })),
        withData(good, (d) => ({ ...d, more: true })),
        withData(good, () => ({ __proto__: { counter: 1 } })),
      ];
      expect(hostileStateProblems(target, hostile)).to.deep.equal([]);
      expect(target.loads).to.equal(0);
    });

    it("refuses a state that fails the instance's own check", () => {
      const small = new FakeSnapshottable('a', 2);
      expect(() => restoreSnapshot(small, takeSnapshot(filled('a', 5)))).to.throw(
        StateError,
        /above this instance's limit 2/,
      );
      expect(small.loads).to.equal(0);
    });

    it('says which version it cannot read, and upgrades an older one', () => {
      const t = new FakeSnapshottable('a');
      const err = (() => {
        try {
          restoreSnapshot(t, { id: 'a', version: 3, data: {} });
        } catch (e) {
          return e as StateError;
        }
      })();
      expect(err).to.be.instanceOf(StateError);
      expect(err!.kind).to.equal('Version');
      expect(err!.message).to.equal('a: saved fake state version 3 is newer than this build reads (up to 2)');
      restoreSnapshot(t, { id: 'a', version: 1, data: { counter: 4, big: '5' } });
      expect([t.counter, t.big, t.blob.length]).to.deep.equal([4, 5n, 0]);

      const noUpgrades = defineState({ name: 'plain', version: 2, schema: z.strictObject({}) });
      const p = { id: 'p', stateSpec: noUpgrades, saveState: () => ({}), loadState: () => {} };
      expect(() => restoreSnapshot(p, { id: 'p', version: 1, data: {} })).to.throw(
        StateError,
        /version 1 is no longer readable/,
      );
    });

    it('refuses to save a state that does not fit its own schema', () => {
      const f = new FakeSnapshottable('a');
      f.counter = 5000;
      expect(() => takeSnapshot(f)).to.throw(StateError, /does not fit its own schema/);
    });

    it('a hypervisor VM state wraps Vm.saveState blobs and checks names and sizes first', () => {
      const hv = new MockHypervisor();
      const vm = hv.createVm();
      const s = new HypervisorVmSnapshot(vm);
      const saved = JSON.parse(JSON.stringify(takeSnapshot(s))) as unknown;
      expect(saved).to.deep.equal({ id: 'vm', version: 1, data: { blobs: { clock: 'AAAAAAAAAAA=' } } });
      restoreSnapshot(s, saved);
      expect(hv.callsTo('vm', 'restoreState')).to.have.length(1);
      const bad = [
        withData(saved as never, () => ({ blobs: { clock: 'AAAA' } })),
        withData(saved as never, () => ({ blobs: { clock: 'AAAAAAAAAAA=', pit: 'AAAA' } })),
        withData(saved as never, () => ({ blobs: {} })),
        withData(saved as never, () => ({ blobs: { 'a/b': 'AAAA' } })),
      ];
      expect(hostileStateProblems(s, bad)).to.deep.equal([]);
      expect(hv.callsTo('vm', 'restoreState')).to.have.length(1);
    });
  });

  describe('the registry', () => {
    it('walks by phase, then registration order, with snapshottable devices in the device phase', () => {
      const devices = new OrderedDeviceRegistry();
      const reg = new OrderedStateRegistry(devices);
      devices.add({ id: 'plain-device' });
      devices.add(new FakeSnapshottable('dev1'));
      reg.add(new FakeSnapshottable('machine'), 'machine');
      reg.add(new FakeSnapshottable('extra-device'));
      reg.add(new FakeSnapshottable('vcpu0'), 'vcpu');
      const gone = reg.add(new FakeSnapshottable('unplugged'));
      reg.add(new FakeSnapshottable('vm'), 'vm');
      gone.dispose();
      expect(reg.all().map((s) => s.id)).to.deep.equal(['vm', 'vcpu0', 'extra-device', 'dev1', 'machine']);
      expect(isSnapshottable(devices.get('plain-device'))).to.equal(false);
      reg.add(new FakeSnapshottable('dev1'));
      expect(() => reg.all()).to.throw(StateError, /share the id 'dev1'/);
    });

    it('saves a whole VM and restores it into a fresh one, in any order of the saved list', () => {
      const build = (n: number) => {
        const reg = new OrderedStateRegistry();
        const items = ['vm', 'serial0', 'blk0'].map((id, i) => filled(id, n + i));
        items.forEach((s) => reg.add(s));
        return { reg, items };
      };
      const a = build(10);
      const saved = JSON.parse(JSON.stringify(saveVmState(a.reg))) as unknown[];
      const b = build(0);
      restoreVmState(b.reg, saved.reverse());
      expect(saveVmState(b.reg)).to.deep.equal(saveVmState(a.reg));
    });

    it('validates every state before loading any', () => {
      const reg = new OrderedStateRegistry();
      const items = ['a', 'b', 'c'].map((id) => new FakeSnapshottable(id));
      items.forEach((s) => reg.add(s));
      const good = ['a', 'b', 'c'].map((id) => takeSnapshot(filled(id, 1)));
      const cases: [unknown, RegExp][] = [
        [{}, /not a list/],
        [good.slice(0, 2), /no state for 'c'/],
        [[...good, takeSnapshot(filled('d', 1))], /state for 'd', which this VM does not have/],
        [[...good, good[0]], /two states for 'a'/],
        [
          [good[0], good[1], withData(good[2]!, (d) => ({ ...d, counter: 'x' }))],
          /c: invalid saved fake state: counter/,
        ],
        [[good[0], 7, good[2]], /saved state #1/],
      ];
      for (const [bad, msg] of cases) expect(() => restoreVmState(reg, bad), String(msg)).to.throw(StateError, msg);
      expect(items.map((i) => i.loads)).to.deep.equal([0, 0, 0]);
    });

    it('says the VM is partly restored when loading fails after validation', () => {
      const reg = new OrderedStateRegistry();
      const a = new FakeSnapshottable('a');
      const b = new FakeSnapshottable('b');
      b.failLoad = new Error('rings outside memory');
      reg.add(a);
      reg.add(b);
      const saved = [takeSnapshot(filled('a', 1)), takeSnapshot(filled('b', 1))];
      expect(() => restoreVmState(reg, saved)).to.throw(
        StateError,
        /b: .*rings outside memory; the VM is partly restored/,
      );
      expect(readSnapshot(a, saved[0])).to.deep.include({ counter: 1 });
    });
  });
});
