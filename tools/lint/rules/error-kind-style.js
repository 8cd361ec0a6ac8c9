/**
 * tsvmm/error-kind-style: every error kind is PascalCase ('InvalidGuestAddress', 'BadMagic', 'Io').
 *
 * An error kind is a string literal that names why a VmmError was thrown; callers and tests branch on it
 * (`err.kind === 'ReadOnly'`), so one spelling across modules matters. The kinds are declared as the type
 * argument of VmmError: either inline (`class AddressError extends VmmError<'Invalid' | 'Overflow'>`) or
 * through a type alias whose name ends in `ErrorKind` (`type QcowErrorKind = 'BadMagic' | ...`). This rule
 * checks every string literal type in both places; the constructor's `kind` parameter is typed by them, so
 * the compiler carries the style to every `throw`.
 */
const PASCAL_CASE = /^[A-Z][A-Za-z0-9]*$/;

/** Calls `visit` on every string literal type inside a type node (unions, parentheses, nesting). */
function eachStringLiteralType(node, visit) {
  if (!node || typeof node !== 'object') return;
  if (node.type === 'TSLiteralType' && node.literal.type === 'Literal' && typeof node.literal.value === 'string') {
    visit(node.literal);
    return;
  }
  for (const key of ['types', 'typeAnnotation', 'params']) {
    const child = node[key];
    if (Array.isArray(child)) for (const c of child) eachStringLiteralType(c, visit);
    else if (child) eachStringLiteralType(child, visit);
  }
}

/** The error kind rule (see the file's comment). */
export default {
  meta: {
    type: 'suggestion',
    docs: { description: 'Error kinds (the type argument of VmmError, types named *ErrorKind) are PascalCase' },
    schema: [],
    messages: { style: "Error kind '{{kind}}' is not PascalCase (write e.g. '{{suggestion}}')." },
  },
  create(context) {
    const check = (literal) => {
      if (PASCAL_CASE.test(literal.value)) return;
      const suggestion = literal.value
        .split(/[^A-Za-z0-9]+/)
        .filter(Boolean)
        .map((w) => w[0].toUpperCase() + w.slice(1))
        .join('');
      context.report({ node: literal, messageId: 'style', data: { kind: literal.value, suggestion } });
    };
    return {
      TSTypeAliasDeclaration(node) {
        if (node.id.name.endsWith('ErrorKind')) eachStringLiteralType(node.typeAnnotation, check);
      },
      'ClassDeclaration, ClassExpression'(node) {
        const base = node.superClass;
        if (base?.type !== 'Identifier' || base.name !== 'VmmError') return;
        const args = node.superTypeArguments ?? node.superTypeParameters;
        if (args) eachStringLiteralType(args, check);
      },
    };
  },
};
