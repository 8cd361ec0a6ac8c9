import { expect } from 'chai';
import * as net from 'node:net';
import { apiRequest } from '../../hosts/api/client.js';
import { ApiHarness, parseRaw, rawExchange } from './harness.js';

const isErrorShape = (b: unknown): boolean => Array.isArray(b) && b.length > 0 && b.every((m) => typeof m === 'string');

describe('api server: hostile input', () => {
  let h: ApiHarness;
  afterEach(async () => h?.close());

  const pingOk = async (): Promise<void> => {
    const a = await apiRequest(h.socket, 'GET', 'vmm.ping');
    expect(a.status, 'vmm.ping still answers').to.equal(200);
  };

  it('malformed JSON, wrong types, unknown fields: 400 in the error shape, nothing created', async () => {
    h = await new ApiHarness().start();
    const bodies = [
      '{"payload": {"kernel": "/k"',
      '\u0000\u00ff',
      '[]',
      'null',
      '{"payload": {"kernel": "/k"}, "memory": {"size": "256M"}}',
      '{"payload": {"kernel": "/k"}, "cpus": {"boot_vcpus": -1, "max_vcpus": 1}}',
      '{"payload": {"kernel": "/k"}, "__proto__": {"x": 1}}',
      '{"payload": {"kernel": "/k", "kernal": "/k"}}',
      `{"payload": {"kernel": "/k"}, "disks": [${'{"path":"/d","bogus":1},'.repeat(1000)}{}]}`,
    ];
    for (const b of bodies) {
      const r = parseRaw(
        await rawExchange(h.socket, [
          `PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`,
        ]),
      );
      expect(r.status, b.slice(0, 60)).to.equal(400);
      expect(isErrorShape(r.body), b.slice(0, 60)).to.equal(true);
      expect((r.body as string[])[0]).to.equal('Failed to deserialize JSON');
    }
    expect((await apiRequest(h.socket, 'GET', 'vm.info')).status).to.equal(404);
    await pingOk();
  });

  it('every route that takes a body refuses bad JSON, wrong types and unknown fields with 400 in the error shape', async () => {
    h = await new ApiHarness().start();
    const bad: Record<string, string[]> = {
      'vm.add-disk': ['{"path": 7}', '{"path": "/d", "readonly": "yes"}', '{"path": "/d", "pathh": "/e"}', '{"path":'],
      'vm.add-net': ['{"tap": ["t"]}', '{"tap": "t", "bogus": 1}', '{'],
      'vm.remove-device': ['{"id": 1}', '{"id": "x", "force": true}', '"x"'],
      'vm.snapshot': ['{"destination_url": null}', '{"destination_url": "file:///s", "x": 1}', '[]'],
      'vm.restore': ['{"source_url": 5}', '{"source_url": "file:///s", "prefault": "no"}', ''],
      'vm.send-migration': ['{"destination_url": 1}', '{}'],
      'vm.receive-migration': ['{"receiver_url": false}', '{"receiver_url": "unix:/x", "y": 2}'],
    };
    for (const [route, bodies] of Object.entries(bad))
      for (const b of bodies) {
        const r = parseRaw(
          await rawExchange(h.socket, [
            `PUT /api/v1/${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`,
          ]),
        );
        expect(r.status, `${route} ${b}`).to.be.within(400, 499);
        expect(isErrorShape(r.body), `${route} ${b}`).to.equal(true);
      }
    await pingOk();
  });

  it('a 100 MB body is refused with 413 as soon as its length is declared, and also when it streams', async () => {
    h = await new ApiHarness().start();
    const declared = parseRaw(
      await rawExchange(h.socket, [
        'PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${100 * 1024 * 1024}\r\n\r\n{"payload":`,
      ]),
    );
    expect(declared.status).to.equal(413);
    expect(isErrorShape(declared.body)).to.equal(true);

    // chunked: no length up front; the server stops reading past its limit (1 MiB) and answers 413
    const before = process.memoryUsage().rss;
    const streamed = await new Promise<number>((resolve, reject) => {
      const c = net.connect(h.socket);
      let got = '';
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (sent < 100 * 1024 * 1024 && !c.destroyed) {
          sent += chunk.length;
          c.write(`${chunk.length.toString(16)}\r\n`);
          c.write(chunk);
          if (!c.write('\r\n')) return void c.once('drain', pump);
        }
      };
      c.on('connect', () => {
        c.write('PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
        pump();
      });
      c.on('data', (d: Buffer) => (got += d.toString()));
      c.on('close', () => resolve(parseRaw(got).status));
      c.on('error', (e: NodeJS.ErrnoException) => (['EPIPE', 'ECONNRESET'].includes(e.code!) ? undefined : reject(e)));
    });
    expect(streamed).to.equal(413);
    expect(process.memoryUsage().rss - before, 'the body was not buffered').to.be.lessThan(64 * 1024 * 1024);
    await pingOk();
  });

  it('a client sending one byte at a time gets 408 once its headers take too long; others are served meanwhile', async () => {
    h = await new ApiHarness({ limits: { headersTimeoutMs: 400, requestTimeoutMs: 800 } }).start();
    const req = 'GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n\r\n';
    const slow = rawExchange(h.socket, [...req], 100);
    await pingOk();
    const r = parseRaw(await slow);
    expect(r.status).to.equal(408);
    expect(r.body).to.deep.equal(['Request Timeout', 'the request took too long to arrive']);
    // the headers arrive at once, the body one byte at a time: the request time limit ends it
    const body = '{"payload":{"kernel":"/k"}}';
    const slowBody = rawExchange(
      h.socket,
      [`PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, ...body],
      100,
    );
    const b = parseRaw(await slowBody);
    expect(b.status).to.equal(408);
    await pingOk();
  });

  it('1,000 concurrent connections: each is answered (200 or 429 in the error shape), the count stays bounded', async () => {
    h = await new ApiHarness({ limits: { maxConnections: 32 } }).start();
    const rssBefore = process.memoryUsage().rss;
    // a connect the kernel refuses (its listen queue full: EAGAIN) is bounded too: status -1 here
    const answers = await Promise.all(
      Array.from({ length: 1000 }, () =>
        rawExchange(h.socket, ['GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']).then(
          parseRaw,
          (e: NodeJS.ErrnoException) => {
            if (e.code !== 'EAGAIN') throw e;
            return { status: -1, body: undefined };
          },
        ),
      ),
    );
    expect(process.memoryUsage().rss - rssBefore, '1,000 connections need no more than 64 MiB').to.be.lessThan(
      64 * 1024 * 1024,
    );
    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    const statuses = JSON.stringify([...byStatus]);
    expect(
      [...byStatus.keys()].every((s) => s === 200 || s === 429 || s === -1),
      statuses,
    ).to.equal(true);
    expect(byStatus.get(200) ?? 0).to.be.greaterThan(0);
    for (const a of answers.filter((x) => x.status === 429))
      expect(a.body).to.deep.equal(['Too Many Requests', 'more than 32 open connections']);
    await pingOk();
  });

  it('idle connections holding every slot are closed at the header timeout, and vmm.ping answers again', async () => {
    h = await new ApiHarness({ limits: { maxConnections: 8, headersTimeoutMs: 300 } }).start();
    const idle = Array.from({ length: 8 }, () => rawExchange(h.socket, []));
    await new Promise((r) => setImmediate(r));
    await Promise.all(idle);
    await pingOk();
  });

  it("paths with '..' or '.', odd encodings, other roots and garbage: clear 4xx in the error shape", async () => {
    h = await new ApiHarness().start();
    const cases: [string, number][] = [
      ['/api/v1/../v1/vmm.ping', 400],
      ['/api/v1/%2e%2e/vmm.ping', 400],
      ['/api/v1/./vmm.ping', 400],
      ['/api/v1/vm.info/../vmm.ping', 400],
      ['/api/v1/%zz', 400],
      ['/api/v2/vmm.ping', 404],
      ['/etc/passwd', 404],
      [`/api/v1/${'a'.repeat(5000)}`, 404],
    ];
    for (const [p, status] of cases) {
      const r = parseRaw(await rawExchange(h.socket, [`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]));
      expect(r.status, p).to.equal(status);
      expect(isErrorShape(r.body), p).to.equal(true);
    }
    const garbage = parseRaw(await rawExchange(h.socket, ['\x16\x03\x01 not http at all\r\n\r\n']));
    expect(garbage.status).to.equal(400);
    expect(isErrorShape(garbage.body)).to.equal(true);
    const hugeHeader = parseRaw(
      await rawExchange(h.socket, [`GET /api/v1/vmm.ping HTTP/1.1\r\nX: ${'a'.repeat(64 * 1024)}\r\n\r\n`]),
    );
    expect(hugeHeader.status).to.equal(431);
    expect(isErrorShape(hugeHeader.body)).to.equal(true);
    await pingOk();
  });
});
