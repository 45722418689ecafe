// One XML parser and builder setup for the annotation-tool formats (fast-xml-parser): attributes
// kept with an '@_' prefix, values as strings (a label '1e3' stays a label), entities decoded on
// read and escaped on write, and the listed elements always arrays so one child reads like many.
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';

export type XmlNode = Record<string, unknown>;

export function parseXml(text: string, file: string, arrays: readonly string[]): XmlNode {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: not well-formed XML (line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg})`);
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    ignoreDeclaration: true,
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && arrays.includes(name),
  });
  return parser.parse(text) as XmlNode;
}

export function buildXml(doc: XmlNode): string {
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    format: true,
    indentBy: '  ',
    suppressEmptyNode: true,
    suppressBooleanAttributes: false,
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(doc) as string}`;
}

/** The element's children of one name (always an array), whatever the parser made of them. */
export function children(node: unknown, name: string): XmlNode[] {
  if (!node || typeof node !== 'object') return [];
  const v = (node as XmlNode)[name];
  if (v === undefined || v === null || v === '') return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'object' && x !== null ? (x as XmlNode) : { '#text': String(x) }));
}

export function child(node: unknown, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

/** Text of a simple element (`<size>12</size>`), or undefined. */
export function text(node: unknown, name: string): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const v = (node as XmlNode)[name];
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined || one === null) return undefined;
  if (typeof one === 'object') {
    const t = (one as XmlNode)['#text'];
    return t === undefined ? '' : String(t);
  }
  return String(one);
}

export function attr(node: XmlNode, name: string): string | undefined {
  const v = node[`@_${name}`];
  return v === undefined ? undefined : String(v);
}
