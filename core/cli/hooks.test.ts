import { expect } from 'chai';
import { buildProgram, main } from './main.js';

describe('vmm CLI hooks', () => {
  afterEach(() => {
    process.exitCode = undefined;
  });

  it("a host's commands hook adds subcommands next to the built-in ones", async () => {
    const seen: string[] = [];
    const hooks = {
      commands: (program: import('commander').Command) => {
        program
          .command('hello')
          .argument('<who>')
          .action((who: string) => {
            seen.push(who);
          });
      },
    };
    expect(buildProgram(hooks).commands.map((c) => c.name())).to.include.members(['run', 'validate', 'hello']);
    expect(await main(['node', 'vmm', 'hello', 'world'], hooks)).to.equal(0);
    expect(seen).to.deep.equal(['world']);
  });
});
