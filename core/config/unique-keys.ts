import { isScalar, visit, type Document, type Node } from 'yaml';

/**
 * The first map key that repeats an earlier key of its map (YAML requires unique keys), or undefined. The yaml
 * package's own check (`uniqueKeys`) compares each new key with every earlier one: a 1 MB config of 100,000 keys
 * cost it minutes of CPU. This one keeps a set per map (linear). Keys compare as the package compares them: scalars
 * by value (`1` and `'1'` differ), collection and alias keys never equal another.
 */
export function firstDuplicateKey(doc: Document): Node | undefined {
  let dup: Node | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const item of map.items) {
        if (!isScalar(item.key)) continue;
        if (seen.has(item.key.value)) {
          dup = item.key;
          return visit.BREAK;
        }
        seen.add(item.key.value);
      }
      return undefined;
    },
  });
  return dup;
}
