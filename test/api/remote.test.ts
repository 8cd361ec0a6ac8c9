import { expect } from 'chai';
import { parseKeyValues, runRemote } from '../../hosts/api/remote.js';
import { ApiHarness } from './harness.js';

describe('vmm remote (ch-remote-like client)', () => {
  let h: ApiHarness;
  afterEach(async () => h?.close());

  const remote = async (name: string, arg?: string) => {
    let out = '';
    let err = '';
    const code = await runRemote(
      h.socket,
      name,
      arg,
      (s) => (out += s),
      (s) => (err += s),
    );
    return { code, out, err };
  };

  it('parses ch-remote device options', () => {
    expect(parseKeyValues('path=/d.img,readonly=on,num_queues=2,id=vdb')).to.deep.equal({
      path: '/d.img',
      readonly: true,
      num_queues: 2,
      id: 'vdb',
    });
    expect(() => parseKeyValues('path')).to.throw(/key=value/);
  });

  it('ping, info, pause, resume, counters, shutdown against a served VM; failures are one line and exit 1', async () => {
    h = await new ApiHarness().start();
    expect(JSON.parse((await remote('ping')).out)).to.include({ version: '0.1.0' });
    const info = await remote('info');
    expect(info).to.deep.equal({
      code: 1,
      out: '',
      err: 'vmm: remote info: 404: Error from API: the VM is not created\n',
    });
    h.vmm.create({ payload: { kernel: '/k' } });
    await h.vmm.boot();
    expect((await remote('pause')).code).to.equal(0);
    expect(JSON.parse((await remote('info')).out).state).to.equal('Paused');
    expect((await remote('resume')).code).to.equal(0);
    expect(JSON.parse((await remote('counters')).out)).to.deep.equal({ uart0: { txBytes: 10 } });
    const disk = await remote('add-disk', 'path=/d.img,readonly=on');
    expect(disk.code).to.equal(1);
    expect(disk.err).to.match(/^vmm: remote add-disk: 500: Error from API: .*not available/);
    // resize names CH's fields by ch-remote's short keys; the fake VM has no balloon, which the answer says
    const resize = await remote('resize', 'balloon=1048576');
    expect(resize.err).to.match(/^vmm: remote resize: 400: .*no balloon/);
    expect((await remote('resize', 'ballon=1')).err).to.match(/balloon=, cpus= or ram=/);
    expect((await remote('shutdown')).code).to.equal(0);
    expect(JSON.parse((await remote('info')).out).state).to.equal('Shutdown');
  });

  it('says so in one line when nothing listens on the socket', async () => {
    h = await new ApiHarness().start();
    await h.server.close();
    const r = await remote('ping');
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/^vmm: remote: cannot reach the VMM at .*api\.sock: .*\n$/);
  });
});
