import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { z } from 'zod';
import { GuestAddress } from '../../core/address.js';
import { defineState } from '../../core/state/snapshottable.js';
import { Tokens } from '../../core/tokens.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { MigrationError, receiveMigration, sendMigration, type ReceiveOptions } from '../../plugins/migration/index.js';
import type { Warmed } from '../../plugins/migration/warm.js';
import { tinyScope, COUNTER, DATA, memoryOf, until } from './tiny-guest.js';
import { createQcow2 } from '../../plugins/qcow/create.js';
import { Qcow2Format } from '../../plugins/qcow/format.js';
import { controlRequest } from '../../plugins/migration/control.js';

/** The VmFlags of this process's mapping that starts at `addr` (/proc/self/smaps), '' when there is none. */
function vmFlagsAt(addr: bigint): string {
  const blocks = fs.readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  const block = blocks.find((b) => BigInt(`0x${b.slice(0, b.indexOf('-'))}`) === addr);
  return /^VmFlags:(.*)$/m.exec(block ?? '')?.[1] ?? '';
}

describe('migration: live migration between two VMs on host KVM, over a Unix socket and TCP (kvm tier)', function () {
  this.timeout(120_000);
  const t = tinyScope('mig-live');
  const start = t.start;

  /** Receives on `url` (reporting the real address) while `send` runs; returns the received VM. */
  async function migrate(
    a: AssembledVm,
    url: string,
    opts: Parameters<typeof sendMigration>[2] = {},
    recv: ReceiveOptions = {},
  ): Promise<{ b: AssembledVm; r: Awaited<ReturnType<typeof sendMigration>> }> {
    let addr!: (a: string) => void;
    const listening = new Promise<string>((res) => (addr = res));
    const received = receiveMigration(url, { logger: silentLogger(), memoryDir: t.dir, onListening: addr, ...recv });
    const r = await sendMigration(a, await listening, opts);
    const b = await received;
    t.track(b);
    return { b, r };
  }

  /** Starts the counting guest and waits until it counted past 1000. */
  async function counting(): Promise<AssembledVm> {
    const a = await start();
    await until(() => memoryOf(a).readU32(COUNTER) > 1000, 'the guest to count');
    return a;
  }

  /** Resolves once the (migrated) guest of `b` counted 100 further. */
  async function countsOn(b: AssembledVm): Promise<void> {
    const at = memoryOf(b).readU32(COUNTER);
    await until(() => memoryOf(b).readU32(COUNTER) > at + 100, 'the migrated guest to count on');
  }

  it('moves a counting guest over a Unix socket while it runs: it counts on in the destination', async () => {
    const a = await start();
    const memA = memoryOf(a);
    await until(() => memA.readU32(COUNTER) > 1000, 'the guest to count');
    const progress: number[] = [];
    const { b, r } = await migrate(a, `unix:${path.join(t.dir, 'mig.sock')}`, {
      // a VMM write after round 1 copied the page: KVM's log misses it, the VMM-side dirty bitmap must not
      onProgress: (p) => (progress.push(p.round), p.round === 1 && memA.writeU32(DATA, 0xc0ffee)),
    });
    expect(a.lifecycle.state, 'the source stopped').to.equal('stopped');
    expect(b.lifecycle.state).to.equal('started');
    expect(progress.length).to.be.at.least(1);
    expect(r.rounds).to.equal(progress.length);
    expect(r.downtimeMs).to.be.at.most(r.totalMs);
    const memB = memoryOf(b);
    expect(memB.readU32(DATA)).to.equal(0xc0ffee);
    const at = memB.readU32(COUNTER);
    await until(() => memB.readU32(COUNTER) > at + 100, 'the migrated guest to count on');
    expect(
      fs.readdirSync(t.dir).filter((f) => f.endsWith('.mem')),
      'no memory file left',
    ).to.deep.equal([]);
  });

  it('a guest that keeps rewriting 16 MiB of zero pages converges: the last copy is priced per page looked at', async () => {
    const a = await counting();
    const memA = memoryOf(a);
    const busy = GuestAddress.of(0x200_0000); // 32 MiB: above the kernel, below the 64 MiB end
    const estimates: (number | undefined)[] = [];
    const { b, r } = await migrate(a, `unix:${path.join(t.dir, 'zeros.sock')}`, {
      maxRounds: 10,
      // every round finds 4096 dirty zero pages (what `dd if=/dev/zero` over a file in RAM does): priced at the
      // bytes of page data a round sends (none of them), they never fitted any budget until maxRounds
      onProgress: (p) => (estimates.push(p.estimateMs), memA.fill(busy, 16 << 20, 0)),
    });
    expect(r.rounds, `rounds (estimates ${estimates.join(', ')} ms)`).to.be.below(10);
    expect(estimates[0], 'round 1 prices nothing').to.equal(undefined);
    expect(estimates[r.rounds - 1], 'the last round priced the copy within the budget').to.be.at.most(300);
    await countsOn(b);
  });

  it('a pre-copy that does not converge holds the vCPUs a growing share of the time (auto-converge)', async () => {
    const a = await counting();
    const memA = memoryOf(a);
    const busy = GuestAddress.of(0x200_0000);
    const shares: (number | undefined)[] = [];
    // 4 MiB of data rewritten every round against a 1 ms budget: it never fits
    const rewrite = (p: { throttlePercent?: number }): void => (
      shares.push(p.throttlePercent),
      memA.fill(busy, 4 << 20, 0x5a)
    );
    const { b } = await migrate(a, `unix:${path.join(t.dir, 'converge.sock')}`, {
      downtimeMs: 1,
      maxRounds: 5,
      onProgress: rewrite,
    });
    expect(shares, 'from the second round that left most pages dirty: 20 %, then 10 % more per round').to.deep.equal([
      undefined,
      undefined,
      20,
      30,
      40,
    ]);
    expect(memoryOf(b).readU8(busy.add(12345))).to.equal(0x5a);
    await countsOn(b);

    // cancelled while throttled: the source's vCPUs run on (no hold left behind); without auto-converge, no hold
    const c = await counting();
    const memC = memoryOf(c);
    const ac = new AbortController();
    const held: (number | undefined)[] = [];
    const url = `unix:${path.join(t.dir, 'converge2.sock')}`;
    const recv = receiveMigration(url, { logger: silentLogger(), memoryDir: t.dir }).catch((e: unknown) => e);
    await until(() => fs.existsSync(path.join(t.dir, 'converge2.sock')), 'the listener');
    const err = await sendMigration(c, url, {
      downtimeMs: 1,
      signal: ac.signal,
      onProgress: (p) => (p.throttlePercent && ac.abort(), memC.fill(busy, 4 << 20, 0x5a)),
    }).catch((e: unknown) => e);
    expect((err as MigrationError).kind, String(err)).to.equal('Cancelled');
    expect(await recv).to.be.instanceOf(MigrationError);
    expect(c.lifecycle.state).to.equal('started');
    await countsOn(c);
    const { b: d } = await migrate(c, `unix:${path.join(t.dir, 'converge3.sock')}`, {
      downtimeMs: 1,
      maxRounds: 4,
      autoConverge: false,
      onProgress: (p) => (held.push(p.throttlePercent), memC.fill(busy, 4 << 20, 0x5a)),
    });
    expect(held).to.deep.equal([undefined, undefined, undefined, undefined]);
    await countsOn(d);
  });

  it('the destination builds its VM (vCPUs made) while the source runs; after Commit the state loads', async () => {
    const a = await counting();
    let built: AssembledVm | undefined;
    let sourceAtBuild: string | undefined;
    let warmed: Warmed | undefined;
    let atHandOver: { built: boolean; destination?: string; source: string } | undefined;
    const { b } = await migrate(
      a,
      `unix:${path.join(t.dir, 'pre.sock')}`,
      {
        onCommit: () =>
          (atHandOver = { built: built !== undefined, destination: built?.lifecycle.state, source: a.lifecycle.state }),
      },
      { onPreassembled: (vm, w) => ((built = vm), (warmed = w), (sourceAtBuild = a.lifecycle.state)) },
    );
    expect(atHandOver?.built, 'built before the source stopped').to.equal(true);
    expect(sourceAtBuild, 'the source ran while the destination was built').to.equal('started');
    expect(b, 'the VM built early is the one that runs').to.equal(built);
    // the state code ran once before the stop, so the load after Commit does not compile it
    expect(warmed?.checked).to.include.members(['vm', 'vcpu0', 'serial', 'machine']);
    expect(warmed?.loaded).to.deep.equal(['vcpu0']);
    expect(warmed?.failed).to.deep.equal([]);
    // the source let go only once the destination ran: its teardown is not in the downtime
    expect(atHandOver?.destination, 'the destination runs at the hand-over').to.equal('started');
    expect(atHandOver?.source, 'the source is not torn down before it').to.not.equal('stopped');
    expect(a.lifecycle.state, 'and stopped after').to.equal('stopped');
    await countsOn(b);
  });

  it('a destination that builds its VM early takes the pages straight into its RAM, advised for huge pages', async () => {
    const a = await counting();
    memoryOf(a).writeU32(DATA, 0xfeed);
    let atBuild: { kinds: string[]; files: string[]; advised: boolean[] } | undefined;
    const { b } = await migrate(
      a,
      `unix:${path.join(t.dir, 'anon.sock')}`,
      {},
      {
        onPreassembled: (vm) => {
          const regions = memoryOf(vm).regions;
          atBuild = {
            kinds: regions.map((r) => r.backing.kind),
            files: fs.readdirSync(t.dir).filter((f) => f.endsWith('.mem')),
            advised: regions.map((r) => vmFlagsAt(r.hostAddress).includes('hg')),
          };
        },
      },
    );
    expect(atBuild?.kinds, 'the VM built early runs on anonymous memory').to.deep.equal(['anonymous']);
    expect(atBuild?.files, 'no memory file').to.deep.equal([]);
    expect(atBuild?.advised, 'MADV_HUGEPAGE (VmFlags hg)').to.deep.equal([true]);
    expect(memoryOf(b).readU32(DATA), 'the pages landed in it').to.equal(0xfeed);
    await countsOn(b);
  });

  it('a destination that built its VM checks the states before Ready: a misfit is refused, the source runs on', async () => {
    const a = await counting();
    // a part the destination's VM does not have: found only when the states are checked against that VM
    const stowaway = a.container.resolve(Tokens.StateRegistry.token).add({
      id: 'stowaway',
      stateSpec: defineState({ name: 'stowaway', version: 1, schema: z.object({}) }),
      saveState: () => ({}),
      loadState: () => {},
    });
    const url = `unix:${path.join(t.dir, 'misfit.sock')}`;
    let built: AssembledVm | undefined;
    const recv = receiveMigration(url, {
      logger: silentLogger(),
      memoryDir: t.dir,
      onPreassembled: (vm) => (built = vm),
    }).catch((e: unknown) => e);
    await until(() => fs.existsSync(path.join(t.dir, 'misfit.sock')), 'the listener');
    const err = await sendMigration(a, url).catch((e: unknown) => e);
    const got = await recv;
    if (!(got instanceof Error)) t.track(got as AssembledVm);
    stowaway.dispose();
    expect(built, 'the destination built its VM early').to.not.equal(undefined);
    expect((got as MigrationError).kind, String(got)).to.equal('Mismatch');
    expect(String(got)).to.include('stowaway');
    // refused before the hand-over: the source resumed (after Commit it would have stopped, the guest lost)
    expect(err, 'the migration failed').to.be.instanceOf(MigrationError);
    expect(String(err)).to.not.include('after the source stopped');
    expect(a.lifecycle.state).to.equal('started');
    await countsOn(a);
  });

  it('a VM with a qcow2 disk is built early too: the destination opens and locks the image once the source let go', async () => {
    const image = path.join(t.dir, 'mig-disk.qcow2');
    await createQcow2({ path: image, size: 16 << 20 });
    const a = await t.start([
      { name: 'qcow' },
      { name: 'virtio-mmio' },
      { name: 'virtio-blk', id: 'vda', config: { path: 'mig-disk.qcow2', format: 'qcow2' } },
      { name: 'migration', config: { control: 'disk-ctl.sock' } },
    ]);
    await until(() => memoryOf(a).readU32(COUNTER) > 1000, 'the guest to count');
    const qcow = new Qcow2Format();
    const openImage = (): Promise<unknown> =>
      qcow.open({ path: image, readOnly: false }).then(
        (d) => d.close(),
        (e: unknown) => e,
      );
    let lockedWhenBuilt: unknown;
    let addr!: (a: string) => void;
    const listening = new Promise<string>((res) => (addr = res));
    const received = receiveMigration(`unix:${path.join(t.dir, 'disk.sock')}`, {
      logger: silentLogger(),
      memoryDir: t.dir,
      onListening: addr,
      onPreassembled: () => void openImage().then((e) => (lockedWhenBuilt = e)),
    });
    // as `vmm migrate` asks a `vmm run` source: the answer comes before the source's VM (and socket) goes
    const answer = await controlRequest(path.join(t.dir, 'disk-ctl.sock'), { op: 'migrate', url: await listening });
    const b = t.track(await received);
    expect(answer.committed, JSON.stringify(answer)).to.equal(true);
    expect(String(lockedWhenBuilt), 'built early, while the source still held the image').to.match(/lock/i);
    await until(() => a.lifecycle.state === 'stopped', 'the source to stop');
    await countsOn(b);
    expect(String(await openImage()), 'the destination holds the image now').to.match(/lock/i);
    await b.machine!.stop({ kind: 'api' });
    await b.dispose();
    expect(await openImage(), 'let go with the VM').to.equal(undefined);
  });

  it('without pre-assembly (a tap or a back end in the config) the destination builds its VM after Commit', async () => {
    const a = await counting();
    let built = false;
    const { b } = await migrate(
      a,
      `unix:${path.join(t.dir, 'late.sock')}`,
      {},
      { preassemble: false, onPreassembled: () => (built = true) },
    );
    expect(built).to.equal(false);
    expect(a.lifecycle.state, 'the source stopped').to.equal('stopped');
    await countsOn(b);
  });

  it('a migration cancelled after the destination built its VM: it is disposed, the source runs on', async () => {
    const a = await start();
    const memA = memoryOf(a);
    await until(() => memA.readU32(COUNTER) > 0, 'the guest to count');
    const ac = new AbortController();
    const url = `unix:${path.join(t.dir, 'pre-cancel.sock')}`;
    let disposed = 0;
    const recv = receiveMigration(url, {
      logger: silentLogger(),
      memoryDir: t.dir,
      onPreassembled: (vm) => {
        const dispose = vm.dispose.bind(vm);
        vm.dispose = () => (disposed++, dispose());
        ac.abort();
      },
    }).catch((e: unknown) => e);
    await until(() => fs.existsSync(path.join(t.dir, 'pre-cancel.sock')), 'the listener');
    const err = await sendMigration(a, url, { signal: ac.signal }).catch((e: unknown) => e);
    const got = await recv;
    if (!(got instanceof Error)) t.track(got as AssembledVm); // it migrated after all: stop it after the test
    expect((err as MigrationError).kind, String(err)).to.equal('Cancelled');
    expect(got, 'the destination gives up').to.be.instanceOf(MigrationError);
    expect(disposed, 'the VM it built is disposed').to.equal(1);
    expect(
      fs.readdirSync(t.dir).filter((f) => f.endsWith('.mem')),
      'no memory file left',
    ).to.deep.equal([]);
    expect(a.lifecycle.state).to.equal('started');
    const at = memA.readU32(COUNTER);
    await until(() => memA.readU32(COUNTER) > at + 100, 'the source to count on');
  });

  it('a cancelled migration leaves the source running; it then migrates over TCP', async () => {
    const a = await start();
    const memA = memoryOf(a);
    await until(() => memA.readU32(COUNTER) > 0, 'the guest to count');
    const ac = new AbortController();
    ac.abort();
    const url = `unix:${path.join(t.dir, 'cancel.sock')}`;
    const recv = receiveMigration(url, { logger: silentLogger(), memoryDir: t.dir }).catch((e: unknown) => e);
    await until(() => fs.existsSync(path.join(t.dir, 'cancel.sock')), 'the listener');
    const err = await sendMigration(a, url, { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(MigrationError);
    expect((err as MigrationError).kind).to.equal('Cancelled');
    expect(await recv, 'the destination gives up too').to.be.instanceOf(MigrationError);
    expect(a.lifecycle.state).to.equal('started');
    const at = memA.readU32(COUNTER);
    await until(() => memA.readU32(COUNTER) > at + 100, 'the source to count on');

    const { b } = await migrate(a, 'tcp:127.0.0.1:0');
    const memB = memoryOf(b);
    const now = memB.readU32(COUNTER);
    expect(now).to.be.greaterThan(at);
    await until(() => memB.readU32(COUNTER) > now + 100, 'the migrated guest to count on');
  });
});
