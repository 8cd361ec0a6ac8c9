import { expect } from 'chai';
import { HostFileError, RegisteredHostFiles, registerHostFileScheme } from './host-files.js';
import { hostProblems } from './host-check.js';
import type { VmPlan } from '../vmm/plan.js';
import type { PluginModule } from '../plugin/plugin.js';

describe('host hooks', () => {
  it('HostFiles resolves registered schemes only; a resolver failure names the spec', async () => {
    const files = new RegisteredHostFiles();
    expect(await files.resolve('testkit:vmlinux')).to.equal(undefined);
    const reg = registerHostFileScheme('testkit', async (name) => {
      if (name !== 'vmlinux') throw new Error(`no ${name}`);
      return '/kit/vmlinux';
    });
    try {
      expect(await files.resolve('testkit:vmlinux')).to.equal('/kit/vmlinux');
      expect(await files.resolve('vmlinux')).to.equal(undefined); // a path
      expect(await files.resolve('other:vmlinux')).to.equal(undefined);
      const err = await files.resolve('testkit:zImage').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HostFileError);
      expect((err as Error).message).to.equal("cannot get 'testkit:zImage': no zImage");
    } finally {
      reg.dispose();
    }
    expect(await files.resolve('testkit:vmlinux')).to.equal(undefined);
  });

  it("hostProblems collects the listed plugins' host checks with their configs, in plan order", () => {
    const mod = (hostCheck?: PluginModule['hostCheck']): PluginModule => ({ register: () => {}, hostCheck });
    const plan = {
      plugins: [
        { instance: 'a', module: mod((c) => `a cannot run with ${JSON.stringify(c)}`), config: { x: 1 } },
        { instance: 'b', module: mod(() => undefined), config: {} },
        { instance: 'c', module: mod(), config: {} },
        { instance: 'd', module: mod(() => 'd cannot run'), config: {} },
      ],
    } as unknown as VmPlan;
    expect(hostProblems(plan)).to.deep.equal(['a cannot run with {"x":1}', 'd cannot run']);
    expect(hostProblems({ plugins: [] } as unknown as VmPlan)).to.deep.equal([]);
  });
});
