import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestKit, KIT_VERSION } from './kit.js';
import { GuestKitError } from './errors.js';

/** A kit resolved before is found again through current-<package>.json, without apt. */
describe('guestKit() reuses the kit built last', () => {
  const saved: Record<string, string | undefined> = {};
  const envKeys = [
    'TSVMM_GUESTKIT_DIR',
    'TSVMM_KERNEL',
    'TSVMM_INITRAMFS',
    'TSVMM_KERNEL_PACKAGE',
    'TSVMM_GUESTKIT_REFRESH',
    'PATH',
  ];
  let cache: string;
  const key = `linux-image-9.9.9-cloud-amd64_9.9.9-1__busybox_1_1.0__kit${KIT_VERSION}`;
  beforeEach(() => {
    for (const k of envKeys) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    process.env.PATH = '/nonexistent'; // no apt-cache: any apt call fails as 'Unsupported'
    cache = mkdtempSync(join(tmpdir(), 'kit-'));
    const dir = join(cache, key);
    mkdirSync(dir);
    for (const f of ['bzImage', 'vmlinux', 'initramfs.cpio.gz']) writeFileSync(join(dir, f), 'x');
    writeFileSync(
      join(dir, 'kit.json'),
      JSON.stringify({ kernelVersion: '9.9.9-cloud-amd64', source: 'test', pvhEntry: 0x1000 }),
    );
  });
  afterEach(() => {
    for (const k of envKeys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    rmSync(cache, { recursive: true, force: true });
  });
  const pointTo = (k: string) =>
    writeFileSync(join(cache, 'current-linux-image-cloud-amd64.json'), JSON.stringify({ key: k }));
  const apt = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err;
    }
    throw new Error('expected guestKit to need apt');
  };

  it('returns the pointed-to kit with no apt run', async () => {
    pointTo(key);
    const kit = await guestKit({ cacheDir: cache, log: () => {} });
    expect(kit.dir).to.equal(join(cache, key));
    expect(kit.vmlinux).to.equal(join(cache, key, 'vmlinux'));
    expect(kit.kernelVersion).to.equal('9.9.9-cloud-amd64');
  });

  it('asks apt when refresh is requested, the pointer is hostile, of another kit version, or the kit is incomplete', async () => {
    pointTo(key);
    expect(await apt(guestKit({ cacheDir: cache, refresh: true, log: () => {} }))).to.be.instanceOf(GuestKitError);
    for (const bad of ['../' + key, key.replace(`kit${KIT_VERSION}`, `kit${KIT_VERSION - 1}`), 42]) {
      writeFileSync(join(cache, 'current-linux-image-cloud-amd64.json'), JSON.stringify({ key: bad }));
      const err = await apt(guestKit({ cacheDir: cache, log: () => {} }));
      expect(err).to.be.instanceOf(GuestKitError);
      expect((err as Error).message).to.match(/Debian/);
    }
    writeFileSync(join(cache, 'current-linux-image-cloud-amd64.json'), '{not json');
    expect(await apt(guestKit({ cacheDir: cache, log: () => {} }))).to.be.instanceOf(GuestKitError);
    pointTo(key);
    rmSync(join(cache, key, 'vmlinux'));
    expect(await apt(guestKit({ cacheDir: cache, log: () => {} }))).to.be.instanceOf(GuestKitError);
  });
});
