/**
 * Linux tier: user-mode networking. ONE boot of the guest kit kernel on the micro host with virtio-net's `stream`
 * back end connected to passt in L1 (test/guest/passt.ts): the guest, with passt's addresses, fetches a 64 KiB and
 * then a 2 MiB file over HTTP from a server on L1's loopback (passt maps the gateway address to it) with nc (the
 * kit's static busybox wget crashes in its resolver); sha256 compared with the served bytes.
 * The VMM is `bin/vmm.js run` in a child process, killed at the deadline; a failure shows the guest's eth0
 * counters (/proc/net/dev), the VMM's virtio-net statistics, passt's log and the console's tail.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parseGuestOutput } from '../../test/harness/guest-kit.js';
import { deadline } from '../../test/guest/deadline.js';
import { guestResult, guestScope, microConfig, spawnVmm } from '../../test/guest/guest-vm.js';
import { PASST_NET, startPasst, type Passt } from '../../test/guest/passt.js';

const FILES = { small: 64 * 1024, big: 2 * 1024 * 1024 } as const;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Static addresses as passt's DHCP would hand them, then one HTTP/1.0 GET per file with nc, whose stdin stays open
 * (a FIFO held by a sleeping writer) until the server has closed: Debian 12's passt (0.0~git20230309) garbles a TCP
 * stream the guest half-closes (busybox nc shuts its sending side at the end of its stdin): the guest then gets more
 * bytes than were sent and never the end (seen with a plain stream-to-tap relay in place of the VMM too).
 * eth0's counters and nc's status after each file.
 */
const script = (port: number): string => `
ip link set eth0 up
ip addr add ${PASST_NET.guest}/${PASST_NET.prefix} dev eth0
ip route add default via ${PASST_NET.gateway}
for f in small big; do
  rm -f /tmp/in; mkfifo /tmp/in
  ( printf 'GET /%s HTTP/1.0\\r\\n\\r\\n' $f; exec sleep 600 ) > /tmp/in &
  W=$!
  timeout 100 nc ${PASST_NET.gateway} ${port} < /tmp/in > /tmp/$f
  echo "$f-nc=$?"
  kill $W
  echo "$f-status=$(head -n 1 /tmp/$f | tr -d '\\r')"
  echo "$f-bytes=$(wc -c < /tmp/$f)"
  echo "$f-eth0=$(grep eth0 /proc/net/dev | tr -s ' ')"
done
echo "small-sha=$(tail -c ${FILES.small} /tmp/small | sha256sum | cut -d' ' -f1)"
echo "big-sha=$(tail -c ${FILES.big} /tmp/big | sha256sum | cut -d' ' -f1)"
echo done=1
`;

describe('virtio-net stream back end to passt in a Linux guest (linux tier)', function () {
  this.timeout(420_000); // under the runner's 900 s watchdog: passt start 60 s, the VM 330 s, the kill 15 s
  const scope = guestScope('passt');
  let passt: Passt | undefined;
  let web: http.Server | undefined;
  let kill = (): void => {};
  after(() => {
    kill();
    passt?.stop();
    web?.close();
  });

  it("the guest fetches 64 KiB and 2 MiB from an HTTP server on L1's loopback through passt", async () => {
    const { kit, dir } = scope;
    const bodies = { small: randomBytes(FILES.small), big: randomBytes(FILES.big) };
    web = http.createServer((req, res) => res.end(req.url === '/big' ? bodies.big : bodies.small));
    await new Promise<void>((r) => web!.listen(0, '127.0.0.1', r));
    passt = await startPasst();
    const config = microConfig({
      kit,
      dir,
      name: 'passt',
      script: script((web.address() as AddressInfo).port),
      vcpus: 1,
      memory: '256M',
      plugins: [{ name: 'virtio-net', id: 'net0', config: { backend: { kind: 'stream', path: passt.socket } } }],
    });
    const file = path.join(dir, 'vm.yaml');
    fs.writeFileSync(file, JSON.stringify(config));
    const vmm = spawnVmm(file, { cwd: dir });
    kill = () => void vmm.child.kill('SIGKILL');
    const end = await deadline(vmm.ended, 330_000, 'the guest running its script', kill).catch(async (err: Error) => {
      const late = await deadline(vmm.ended, 15_000, 'the killed VMM closing').catch(() => undefined);
      throw new Error(`${err.message}\npasst: ${passt?.log().slice(-1500)}\nconsole:\n${late?.text.slice(-4000)}`);
    });
    const out = parseGuestOutput(end.stdout);
    const r = guestResult(out.result ?? '');
    const stats = end.text.split('\n').find((l) => l.includes('virtio-net statistics')) ?? '(no statistics logged)';
    const evidence =
      `VMM ${end.code ?? end.signal} after ${end.seconds} s; nc ${r.get('small-nc')} ${r.get('big-nc')}; ` +
      `eth0 after each file: ${r.get('small-eth0')} | ` +
      `${r.get('big-eth0')}\nbytes: ${r.get('small-bytes')} ${r.get('big-bytes')}\nvirtio-net: ${stats}\n` +
      `passt: ${passt.log().slice(-1500)}\nconsole:\n${end.text.slice(-3000)}`;
    expect(out.resultComplete, evidence).to.equal(true);
    expect(r.get('done'), evidence).to.equal('1');
    expect(r.get('small-status'), evidence).to.equal('HTTP/1.1 200 OK');
    expect(r.get('small-sha'), evidence).to.equal(sha(bodies.small));
    expect(r.get('big-status'), evidence).to.equal('HTTP/1.1 200 OK');
    expect(r.get('big-sha'), evidence).to.equal(sha(bodies.big));
    expect(end.code, evidence).to.equal(0);
    console.log(`      passt linux: ${end.seconds} s; eth0 ${r.get('big-eth0')}`);
  });
});
