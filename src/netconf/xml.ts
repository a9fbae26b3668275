// A small XML tokenizer for the few things the gateway reads from NETCONF messages: the
// <hello>, and the head (a capped prefix) of <rpc> and <rpc-reply>. Not a validating parser:
// it reads tags, attributes and text, and stops quietly where a truncated prefix ends.

export interface XmlStartTag {
  type: 'start';
  /** Qualified name as written (`nc:rpc`). */
  name: string;
  prefix: string;
  /** Local name (`rpc`); what NETCONF element matching uses, whatever the prefix. */
  local: string;
  /** Attribute values, entity-decoded, keyed by qualified name (`xmlns:nc`, `message-id`). */
  attrs: Map<string, string>;
  selfClosing: boolean;
}

export interface XmlEndTag {
  type: 'end';
  name: string;
  prefix: string;
  local: string;
}

export interface XmlText {
  type: 'text';
  /** Entity-decoded character data (CDATA sections come through verbatim). */
  text: string;
}

export type XmlToken = XmlStartTag | XmlEndTag | XmlText;

/** The input is not XML (as opposed to merely cut short, which ends the tokens quietly). */
export class XmlSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

// Characters that end a name. Anything else is accepted inside one: the point is to find
// element and attribute boundaries, not to check XML's name production.
function endsName(c: number): boolean {
  return isSpace(c) || c === 0x2f || c === 0x3e || c === 0x3d || c === 0x3c || c === 0x22 || c === 0x27;
}

function splitName(name: string): { prefix: string; local: string } {
  const colon = name.indexOf(':');
  return colon < 0 ? { prefix: '', local: name } : { prefix: name.slice(0, colon), local: name.slice(colon + 1) };
}

const ENTITY = /&(#x[0-9a-fA-F]{1,8}|#[0-9]{1,10}|lt|gt|amp|quot|apos);/g;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes the five predefined entities and character references; leaves anything else as written. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY, (whole, ref: string) => {
    if (ref.charCodeAt(0) !== 0x23) return NAMED[ref] ?? whole;
    const cp = ref.charCodeAt(1) === 0x78 ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
    // String.fromCodePoint throws on values outside Unicode; such a reference stays literal.
    return cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
  });
}

function isBlank(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(s.charCodeAt(i))) return false;
  return true;
}

/**
 * Tokens of `src`, in order. The generator's return value says whether the input ended
 * cleanly (`true`), or inside a construct or after unfinished text (`false`: a truncated
 * prefix). Throws XmlSyntaxError on input that no continuation could make well-formed.
 */
export function* xmlTokens(src: string): Generator<XmlToken, boolean, undefined> {
  const len = src.length;
  let i = 0;
  while (i < len) {
    const lt = src.indexOf('<', i);
    if (lt < 0) return isBlank(src, i, len); // trailing text: complete only if it is whitespace
    if (lt > i) yield { type: 'text', text: decodeEntities(src.slice(i, lt)) };
    i = lt;
    if (i + 1 >= len) return false;
    const c = src.charCodeAt(i + 1);

    if (c === 0x3f /* ? */) {
      // Processing instruction or XML declaration: nothing the gateway needs.
      const e = src.indexOf('?>', i + 2);
      if (e < 0) return false;
      i = e + 2;
      continue;
    }

    if (c === 0x21 /* ! */) {
      const rest = len - i;
      if ((rest < 4 && '<!--'.startsWith(src.slice(i))) || (rest < 9 && '<![CDATA['.startsWith(src.slice(i)))) {
        return false;
      }
      if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i + 4);
        if (e < 0) return false;
        i = e + 3;
        continue;
      }
      if (src.startsWith('<![CDATA[', i)) {
        const e = src.indexOf(']]>', i + 9);
        if (e < 0) return false;
        yield { type: 'text', text: src.slice(i + 9, e) };
        i = e + 3;
        continue;
      }
      // <!DOCTYPE …>, possibly with an internal subset in brackets: skipped. One forward
      // pass (no search to the end of the input per construct, which would be quadratic).
      let e = i + 2;
      while (e < len && src.charCodeAt(e) !== 0x3e && src.charCodeAt(e) !== 0x5b) e++;
      if (e < len && src.charCodeAt(e) === 0x5b /* [ */) {
        const close = src.indexOf(']', e);
        e = close < 0 ? len : src.indexOf('>', close);
        if (e < 0) e = len;
      }
      if (e >= len) return false;
      i = e + 1;
      continue;
    }

    if (c === 0x2f /* / */) {
      let j = i + 2;
      while (j < len && !endsName(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      const name = src.slice(i + 2, j);
      if (name === '') throw new XmlSyntaxError(`end tag without a name at offset ${i}`);
      while (j < len && isSpace(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      if (src.charCodeAt(j) !== 0x3e) throw new XmlSyntaxError(`unexpected character in end tag </${name} at offset ${j}`);
      yield { type: 'end', name, ...splitName(name) };
      i = j + 1;
      continue;
    }

    // Start tag.
    let j = i + 1;
    while (j < len && !endsName(src.charCodeAt(j))) j++;
    if (j >= len) return false;
    const name = src.slice(i + 1, j);
    if (name === '') throw new XmlSyntaxError(`'<' not followed by a name at offset ${i}`);
    const attrs = new Map<string, string>();
    let selfClosing = false;
    for (;;) {
      while (j < len && isSpace(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      const d = src.charCodeAt(j);
      if (d === 0x3e /* > */) {
        j++;
        break;
      }
      if (d === 0x2f /* / */) {
        if (j + 1 >= len) return false;
        if (src.charCodeAt(j + 1) !== 0x3e) throw new XmlSyntaxError(`'/' not followed by '>' in <${name} at offset ${j}`);
        selfClosing = true;
        j += 2;
        break;
      }
      const a = j;
      while (j < len && !endsName(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      const attr = src.slice(a, j);
      if (attr === '') throw new XmlSyntaxError(`unexpected character in <${name} at offset ${j}`);
      while (j < len && isSpace(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      if (src.charCodeAt(j) !== 0x3d /* = */) throw new XmlSyntaxError(`attribute ${attr} of <${name} has no value`);
      j++;
      while (j < len && isSpace(src.charCodeAt(j))) j++;
      if (j >= len) return false;
      const q = src.charCodeAt(j);
      if (q !== 0x22 && q !== 0x27) throw new XmlSyntaxError(`attribute ${attr} of <${name} is not quoted`);
      const close = src.indexOf(q === 0x22 ? '"' : "'", j + 1);
      if (close < 0) return false;
      if (!attrs.has(attr)) attrs.set(attr, decodeEntities(src.slice(j + 1, close)));
      j = close + 1;
    }
    yield { type: 'start', name, ...splitName(name), attrs, selfClosing };
    i = j;
  }
  return true;
}

/** The namespace URI a start tag's own prefix is bound to by its own attributes, if it declares it. */
export function ownNamespace(tag: XmlStartTag): string | undefined {
  return tag.attrs.get(tag.prefix === '' ? 'xmlns' : `xmlns:${tag.prefix}`);
}

/** An attribute by local name, ignoring a prefix (`message-id` or `nc:message-id`); unprefixed wins. */
export function attrByLocalName(tag: XmlStartTag, local: string): string | undefined {
  const direct = tag.attrs.get(local);
  if (direct !== undefined) return direct;
  for (const [name, value] of tag.attrs) {
    const colon = name.indexOf(':');
    if (colon >= 0 && name.slice(colon + 1) === local && !name.startsWith('xmlns')) return value;
  }
  return undefined;
}
