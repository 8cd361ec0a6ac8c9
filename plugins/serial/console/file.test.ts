import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileConsole } from './file.js';

describe('serial: file console', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvmm-serial-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('appends output and stops at maxBytes, counting the rest', () => {
    const p = path.join(dir, 'out.log');
    fs.writeFileSync(p, 'old\n');
    let dropped = 0;
    const c = new FileConsole(p, 10, (n) => {
      dropped += n;
    });
    for (const b of Buffer.from('0123456789abcdef')) c.transmit(b);
    c.close();
    c.close();
    expect(fs.readFileSync(p, 'utf8')).to.equal('old\n0123456789');
    expect(dropped).to.equal(6);
  });

  it('reports a path it cannot open', () => {
    expect(() => new FileConsole(path.join(dir, 'missing', 'x.log'), 10)).to.throw(/cannot open serial output file/);
  });
});
