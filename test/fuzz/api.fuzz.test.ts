import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { ApiError } from '../../hosts/api/errors.js';
import { ROUTES } from '../../hosts/api/routes.js';
import { startApiServer, type ApiServer } from '../../hosts/api/server.js';
import { ApiVmm } from '../../hosts/api/vmm.js';
import { fakeRun } from '../api/fake-vm.js';
import { Outcomes, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes, rssMiB } from './support.js';

/**
 * The Cloud Hypervisor-compatible API (hosts/api) over its real HTTP server on a Unix socket, with an ApiVmm whose
 * runs are doubles (test/api/fake-vm.ts): each case is a few requests, any route (but vmm.shutdown, which ends the
 * server) with its own method or the other, bodies built from the spec's keys with values of any type, any JSON,
 * or bytes that are not JSON. Invariants: every answer is a status the server means (2xx, or 4xx/5xx in CH's error
 * shape: a JSON array of strings); nothing the server did not mean to throw reaches its error hook (an exception
 * that is not an ApiError is a 500 the input caused); the server still answers vmm.ping.
 */
const anyValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 10 }),
  fc.constantFrom('', '/', 'file:///tmp/x', 'file:///%zz', 'file://', 'tcp:1.2.3.4:5', 'unix:/tmp/s', 'Off', 'Null'),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, 0.5),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });
const obj = (keys: Record<string, fc.Arbitrary<unknown>>) =>
  fc.record(Object.fromEntries(Object.entries(keys).map(([k, a]) => [k, maybe(fc.oneof(a, anyValue))])), {
    requiredKeys: [],
  });

const disk = obj({
  path: fc.constantFrom('/tmp/disk.img', 'rel.img', ''),
  readonly: fc.boolean(),
  num_queues: fc.integer({ min: -1, max: 70000 }),
  queue_size: fc.constantFrom(0, 1, 128, 256, 1000, 65536),
  id: fc.constantFrom('disk0', 'x', ''),
  image_type: fc.constantFrom('Raw', 'Qcow2', 'Vhdx'),
  vhost_user: fc.boolean(),
});
const net = obj({
  tap: fc.constantFrom('tap0', ''),
  mac: fc.constantFrom('52:54:00:12:34:56', 'zz', ''),
  ip: fc.constantFrom('10.0.0.1', '300.1.1.1'),
  num_queues: fc.integer({ min: -1, max: 70000 }),
  id: fc.constantFrom('net0', ''),
  mtu: fc.integer({ min: -1, max: 100000 }),
});
const console = obj({ mode: fc.constantFrom('Off', 'Null', 'File', 'Tty', 'Socket', 'Pty'), file: fc.string() });
const vmConfig = obj({
  payload: obj({ kernel: fc.constantFrom('/tmp/k', ''), cmdline: fc.string(), initramfs: fc.string() }),
  cpus: obj({ boot_vcpus: fc.integer({ min: -1, max: 300 }), max_vcpus: fc.integer({ min: -1, max: 300 }) }),
  memory: obj({ size: fc.constantFrom(0, 4096, 256 << 20, 2 ** 40, 2 ** 53), shared: fc.boolean() }),
  disks: fc.array(disk, { maxLength: 2 }),
  net: fc.array(net, { maxLength: 2 }),
  serial: console,
  console,
  rng: obj({ src: fc.string() }),
  balloon: obj({ size: fc.integer() }),
  devices: fc.array(obj({ path: fc.string() }), { maxLength: 1 }),
  platform: obj({ num_pci_segments: fc.integer() }),
});
const bodies: Record<string, fc.Arbitrary<unknown>> = {
  'vm.create': vmConfig,
  'vm.add-disk': disk,
  'vm.add-net': net,
  'vm.add-device': obj({ path: fc.string(), id: fc.string() }),
  'vm.remove-device': obj({ id: fc.constantFrom('disk0', 'uart0', '') }),
  'vm.snapshot': obj({ destination_url: fc.constantFrom('file:///tmp/snap', 'file:///%zz', 'http://x') }),
  'vm.restore': obj({
    source_url: fc.constantFrom('file:///tmp/snap', 'file:///%E0%A4%A', 'x'),
    prefault: fc.boolean(),
  }),
  'vm.send-migration': obj({ destination_url: fc.constantFrom('unix:/tmp/m.sock', 'tcp::0'), local: fc.boolean() }),
  'vm.receive-migration': obj({ receiver_url: fc.constantFrom('unix:/tmp/m.sock', 'tcp::0') }),
};

const names = Object.keys(ROUTES).filter((n) => n !== 'vmm.shutdown');
const anyBody = fc.oneof(...Object.values(bodies));
/** A path and a body built for it: a route's own schema's keys, or another route's (a body sent to the wrong place). */
const target = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .constantFrom(...names)
      .chain((n) => fc.record({ path: fc.constant(`/api/v1/${n}`), schemaBody: bodies[n] ?? anyBody })),
  },
  fc.record({
    path: fc.oneof(
      fc.constantFrom('/api/v1/', '/api/v1/vm.nope', '/api/v1/../x', '/api/v1/%zz', '/api/v1/VM.INFO', '/metrics', '/'),
      fc.string({ maxLength: 12 }).map((s) => `/api/v1/${encodeURIComponent(s)}`),
    ),
    schemaBody: anyBody,
  }),
);
const request = fc.record({
  target,
  otherMethod: fc.constantFrom(false, false, false, false, true),
  body: fc.oneof(
    { weight: 6, arbitrary: fc.constant('schema') },
    fc.constant('none'),
    fc.constant('json'),
    fc.constant('bytes'),
  ),
  json: fc.jsonValue({ maxDepth: 3 }),
  bytes: fc.uint8Array({ maxLength: 32 }),
});
type Request = typeof request extends fc.Arbitrary<infer T> ? T : never;

const bodyOf = (r: Request): Buffer | undefined =>
  r.body === 'none'
    ? undefined
    : r.body === 'bytes'
      ? Buffer.from(r.bytes)
      : Buffer.from(JSON.stringify(r.body === 'json' ? r.json : r.target.schemaBody) ?? 'null');

/** A vm.create body the mapping accepts (the runs are doubles: no file is opened). */
const GOOD_CREATE = Buffer.from(JSON.stringify({ payload: { kernel: '/tmp/k' } }));

/** The path's route name, when it names one. */
const routeOf = (path: string): string | undefined => (path.startsWith('/api/v1/') ? path.slice(8) : undefined);

describe('fuzz: API request bodies (Cloud Hypervisor-compatible API)', function () {
  this.timeout(fuzzTimeout(2));
  const dir = mkdtempSync(join('/dev/shm', 'tsvmm-fuzz-api-'));
  const socketPath = join(dir, 'api.sock');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const internal: unknown[] = [];
  let server: ApiServer;
  let vmm: ApiVmm;
  before(async () => {
    vmm = new ApiVmm({ baseDir: dir, version: '0.1.0', run: fakeRun().run });
    server = await startApiServer({ socketPath, vmm, onError: (err) => internal.push(err) });
  });
  after(async () => {
    agent.destroy();
    await vmm.stopAll().catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(method: string, path: string, body: Buffer | undefined): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          socketPath,
          method,
          path,
          headers: body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it(
    fuzzTitle(
      'hostile requests: meant statuses in the error shape, no exception the server did not mean, ping answers',
    ),
    async () => {
      const outcomes = new Outcomes();
      const rssBefore = rssMiB();
      let cases = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('none', 'none', 'created', 'booted'),
          fc.array(request, { minLength: 1, maxLength: 3 }),
          async (start, reqs) => {
            cases++;
            // Where the case starts: no VM, a created one, or a booted one (the states later requests act on).
            let created = start !== 'none';
            if (created) expect((await send('PUT', '/api/v1/vm.create', GOOD_CREATE)).status).to.equal(204);
            if (start === 'booted') expect((await send('PUT', '/api/v1/vm.boot', undefined)).status).to.equal(204);
            for (const r of reqs) {
              const path = r.target.path;
              const route = ROUTES[routeOf(path) ?? ''];
              const own = route?.method ?? 'GET';
              const method = r.otherMethod ? (own === 'GET' ? 'PUT' : 'GET') : own;
              const body = bodyOf(r);
              const a = await send(method, path, body);
              outcomes.add(String(a.status));
              if (path.endsWith('/vm.create') && a.status === 204) created = true;
              expect([200, 204, 400, 404, 405, 409, 413, 500], `status of ${method} ${path}`).to.include(a.status);
              if (a.status >= 400) {
                const parsed = JSON.parse(a.text) as unknown;
                expect(Array.isArray(parsed) && parsed.every((m) => typeof m === 'string'), a.text).to.equal(true);
              }
              const unmeant = internal.filter((e) => !(e instanceof ApiError));
              internal.length = 0;
              expect(unmeant.map(String), `${method} ${path} ${body?.toString('utf8') ?? ''}`).to.deep.equal([]);
            }
            // back to no VM for the next case (as a client would); now and then, the server still answers
            if (created) await send('PUT', '/api/v1/vm.delete', undefined);
            if (cases % 64 === 0) expect((await send('GET', '/api/v1/vmm.ping', undefined)).status).to.equal(200);
          },
        ),
        fuzzParams({ timeout: 10_000 }),
      );
      reportOutcomes('api', outcomes, ['200', '204', '400', '404'], 5);
      expect((await send('GET', '/api/v1/vmm.ping', undefined)).status).to.equal(200);
      expect(rssMiB() - rssBefore, 'resident memory growth (MiB)').to.be.below(512);
    },
  );
  it('a snapshot or restore URL with broken percent-encoding is a 400 (found by this target: URIError, a 500)', async () => {
    for (const [path, body] of [
      ['/api/v1/vm.restore', { source_url: 'file:///%E0%A4%A' }],
      ['/api/v1/vm.snapshot', { destination_url: 'file:///snap/%zz' }],
    ] as const) {
      const a = await send('PUT', path, Buffer.from(JSON.stringify(body)));
      expect(a.status, a.text).to.equal(400);
      expect(a.text).to.match(/percent-encoding/);
    }
    expect(internal).to.deep.equal([]);
  });
});
