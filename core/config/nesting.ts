import { Lexer } from 'yaml';

/**
 * Deepest nesting a config may have. Real configs nest a handful of levels (plugins[i].config.x.y);
 * the limit only has to be far above that and far below what makes the YAML parser costly.
 */
export const MAX_CONFIG_DEPTH = 64;

/**
 * Most values a config may hold (scalars, aliases, collections and their entries, counted as the lexer's tokens).
 * Real configs hold a few hundred; the parser's syntax tree costs ~1 KB per value (1 MB of `1,` took 571 MB), so
 * this bounds its memory to tens of MB whatever the file's shape.
 */
export const MAX_CONFIG_NODES = 100_000;

/**
 * Where the nesting first went too deep, or where the config held too many values (`nodes` set): a character
 * offset in the text.
 */
export interface NestingExcess {
  readonly offset: number;
  readonly depth: number;
  readonly nodes?: number;
}

const OPEN = new Set(['[', '{']);
const CLOSE = new Set([']', '}']);
/** Block indicators that open a new level on the same line ("- - - x", "? ? x"). */
const COMPACT = new Set(['-', '?']);

/** Tokens that start a value or an entry: a scalar (marker, quoted), an alias, a collection, a separator. */
const isNode = (tok: string): boolean =>
  tok === '\x1f' || /^["'*]/.test(tok) || tok === ',' || OPEN.has(tok) || COMPACT.has(tok);

/** The lexer's own control tokens (document start, scalar, flow end): not source text. */
const isMarker = (tok: string): boolean => tok.length === 1 && tok < ' ' && tok !== '\n' && tok !== '\t';

/**
 * Finds YAML nested deeper than `max` before it is parsed. The yaml package has no depth
 * option and builds its syntax tree recursively: 800 KB of '[' costs it ~0.5-0.8 GB and
 * several seconds, and 400 K "- " levels overflow its stack. Its lexer, by contrast, streams
 * tokens in constant memory, so this walks the lexer's tokens and stops at the first
 * excess. It counts open flow collections ('[' '{' tokens; brackets inside quoted or plain
 * scalars are part of the scalar token and do not count) plus compact block indicators on
 * the current line. Indentation nesting needs one more column per level, so a config under
 * MAX_CONFIG_BYTES cannot nest that way deep enough to matter and it is not counted. The same walk counts the
 * values (MAX_CONFIG_NODES): past `maxNodes` the excess has `nodes` set.
 */
export function findExcessNesting(
  text: string,
  max = MAX_CONFIG_DEPTH,
  maxNodes = MAX_CONFIG_NODES,
): NestingExcess | undefined {
  let flow = 0;
  let compact = 0;
  let offset = 0;
  let nodes = 0;
  for (const tok of new Lexer().lex(text)) {
    if (isNode(tok) && ++nodes > maxNodes) return { offset, depth: flow + compact, nodes };
    if (isMarker(tok)) continue;
    if (OPEN.has(tok)) flow++;
    else if (CLOSE.has(tok)) {
      if (flow > 0) flow--;
    } else if (tok === '\n' || tok === '\r\n') compact = 0;
    else if (flow === 0 && COMPACT.has(tok)) compact++;
    if (flow + compact > max) return { offset, depth: flow + compact };
    offset += tok.length;
  }
  return undefined;
}
