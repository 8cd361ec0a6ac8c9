// node --test tools/lint/rules/: the error kind rule accepts PascalCase kinds and reports the others, in both
// places kinds are declared (run by `npm run lint` without arguments).
import { test } from 'node:test';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import rule from './error-kind-style.js';

RuleTester.describe = (_name, fn) => fn();
RuleTester.it = (name, fn) => test(name, fn);
RuleTester.itOnly = RuleTester.it;

const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });

tester.run('error-kind-style', rule, {
  valid: [
    "type QcowErrorKind = 'BadMagic' | 'Io' | 'L2Table';",
    "class AddressError extends VmmError<'Invalid' | 'Overflow'> {}",
    "type Kinds = 'read-only' | 'read-write';", // not an error kind: the name does not end in ErrorKind
    "class Other extends Base<'kebab-case'> {}", // not a VmmError
  ],
  invalid: [
    {
      code: "type QcowErrorKind = 'bad-magic' | 'Io' | 'read_only';",
      errors: [
        { messageId: 'style', data: { kind: 'bad-magic', suggestion: 'BadMagic' } },
        { messageId: 'style', data: { kind: 'read_only', suggestion: 'ReadOnly' } },
      ],
    },
    {
      code: "export class DiskError extends VmmError<'closed' | 'Io'> {}",
      errors: [{ messageId: 'style', data: { kind: 'closed', suggestion: 'Closed' } }],
    },
    {
      code: "const E = class extends VmmError<('tooLarge')> {};",
      errors: [{ messageId: 'style', data: { kind: 'tooLarge', suggestion: 'TooLarge' } }],
    },
  ],
});
