// A small namespace-aware XML reader and writer, just enough for NETCONF messages and the
// simulator's tiny datastore. No DTDs, no external entities (a NETCONF peer must not need
// them, and refusing them keeps the simulator safe to point at anything).

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlError';
  }
}

export interface XmlAttr {
  /** As written, e.g. `nc:operation`. */
  name: string;
  local: string;
  prefix: string;
  /** Resolved namespace; unprefixed attributes have none (''). */
  ns: string;
  value: string;
}

export interface XmlElement {
  local: string;
  prefix: string;
  ns: string;
  /** Attributes other than namespace declarations. */
  attrs: XmlAttr[];
  /** Namespace declarations written on this element: [prefix, uri], '' for the default. */
  nsDecls: Array<[string, string]>;
  children: XmlNode[];
  /** The start tag's attribute text exactly as received (RFC 6241 §4.2 echoes it). */
  rawAttrs: string;
}

export type XmlNode = XmlElement | string;

export const XML_NS = 'http://www.w3.org/XML/1998/namespace';

const NAME = /^[^\s<>/=!?"']+/;
const ATTR = /\s*([^\s<>/=!?"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;

type Scope = Record<string, string>;

interface Ctx {
  text: string;
  pos: number;
}

/** Parses one document; the root element is returned. */
export function parseXml(text: string, maxDepth = 256): XmlElement {
  const ctx: Ctx = { text, pos: 0 };
  skipProlog(ctx);
  if (text[ctx.pos] !== '<') throw new XmlError('no root element');
  const rootScope: Scope = Object.create(null) as Scope;
  rootScope['xml'] = XML_NS;
  rootScope[''] = '';
  const root = parseElement(ctx, rootScope, maxDepth);
  skipMisc(ctx);
  if (ctx.pos < text.length) throw new XmlError('content after the root element');
  return root;
}

function skipProlog(ctx: Ctx): void {
  const t = ctx.text;
  if (t.charCodeAt(0) === 0xfeff) ctx.pos = 1;
  skipMisc(ctx);
  if (t.startsWith('<!DOCTYPE', ctx.pos)) throw new XmlError('DOCTYPE is not allowed');
}

/** Whitespace, comments and processing instructions (including the XML declaration). */
function skipMisc(ctx: Ctx): void {
  const t = ctx.text;
  for (;;) {
    while (ctx.pos < t.length && isSpace(t.charCodeAt(ctx.pos))) ctx.pos++;
    if (t.startsWith('<?', ctx.pos)) {
      const end = t.indexOf('?>', ctx.pos + 2);
      if (end === -1) throw new XmlError('unterminated processing instruction');
      ctx.pos = end + 2;
    } else if (t.startsWith('<!--', ctx.pos)) {
      const end = t.indexOf('-->', ctx.pos + 4);
      if (end === -1) throw new XmlError('unterminated comment');
      ctx.pos = end + 3;
    } else {
      return;
    }
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function splitName(qname: string): [string, string] {
  const i = qname.indexOf(':');
  return i === -1 ? ['', qname] : [qname.slice(0, i), qname.slice(i + 1)];
}

function parseElement(ctx: Ctx, parentScope: Scope, depth: number): XmlElement {
  if (depth <= 0) throw new XmlError('elements nested too deeply');
  const t = ctx.text;
  ctx.pos++; // '<'
  const m = NAME.exec(t.slice(ctx.pos, ctx.pos + 512));
  if (!m) throw new XmlError(`bad element name at ${ctx.pos}`);
  const qname = m[0];
  ctx.pos += qname.length;
  const attrStart = ctx.pos;
  const rawList: Array<[string, string]> = [];
  for (;;) {
    ATTR.lastIndex = ctx.pos;
    const a = ATTR.exec(t);
    if (!a) break;
    rawList.push([a[1]!, decode(a[2] ?? a[3] ?? '')]);
    ctx.pos = ATTR.lastIndex;
  }
  const rawAttrs = t.slice(attrStart, ctx.pos).trim();
  while (ctx.pos < t.length && isSpace(t.charCodeAt(ctx.pos))) ctx.pos++;
  let empty = false;
  if (t.startsWith('/>', ctx.pos)) {
    empty = true;
    ctx.pos += 2;
  } else if (t[ctx.pos] === '>') {
    ctx.pos++;
  } else {
    throw new XmlError(`malformed start tag <${qname}>`);
  }

  const nsDecls: Array<[string, string]> = [];
  let scope = parentScope;
  for (const [name, value] of rawList) {
    if (name === 'xmlns' || name.startsWith('xmlns:')) {
      if (scope === parentScope) scope = Object.create(parentScope) as Scope;
      const prefix = name === 'xmlns' ? '' : name.slice(6);
      scope[prefix] = value;
      nsDecls.push([prefix, value]);
    }
  }
  const [prefix, local] = splitName(qname);
  const ns = scope[prefix];
  if (ns === undefined) throw new XmlError(`undeclared namespace prefix "${prefix}"`);
  const attrs: XmlAttr[] = [];
  const seen = new Set<string>();
  for (const [name, value] of rawList) {
    if (seen.has(name)) throw new XmlError(`duplicate attribute ${name}`);
    seen.add(name);
    if (name === 'xmlns' || name.startsWith('xmlns:')) continue;
    const [ap, al] = splitName(name);
    const ans = ap === '' ? '' : scope[ap];
    if (ans === undefined) throw new XmlError(`undeclared namespace prefix "${ap}"`);
    attrs.push({ name, local: al, prefix: ap, ns: ans, value });
  }
  const el: XmlElement = { local, prefix, ns, attrs, nsDecls, children: [], rawAttrs };
  if (empty) return el;

  for (;;) {
    const lt = t.indexOf('<', ctx.pos);
    if (lt === -1) throw new XmlError(`unterminated element <${qname}>`);
    if (lt > ctx.pos) pushText(el, decode(t.slice(ctx.pos, lt)));
    ctx.pos = lt;
    if (t.startsWith('</', lt)) {
      const gt = t.indexOf('>', lt);
      if (gt === -1) throw new XmlError('unterminated end tag');
      const endName = t.slice(lt + 2, gt).trim();
      if (endName !== qname) throw new XmlError(`end tag </${endName}> does not match <${qname}>`);
      ctx.pos = gt + 1;
      return el;
    }
    if (t.startsWith('<!--', lt)) {
      const end = t.indexOf('-->', lt + 4);
      if (end === -1) throw new XmlError('unterminated comment');
      ctx.pos = end + 3;
    } else if (t.startsWith('<![CDATA[', lt)) {
      const end = t.indexOf(']]>', lt + 9);
      if (end === -1) throw new XmlError('unterminated CDATA section');
      pushText(el, t.slice(lt + 9, end));
      ctx.pos = end + 3;
    } else if (t.startsWith('<?', lt)) {
      const end = t.indexOf('?>', lt + 2);
      if (end === -1) throw new XmlError('unterminated processing instruction');
      ctx.pos = end + 2;
    } else if (t.startsWith('<!', lt)) {
      throw new XmlError('markup declarations are not allowed');
    } else {
      el.children.push(parseElement(ctx, scope, depth - 1));
    }
  }
}

function pushText(el: XmlElement, s: string): void {
  const last = el.children[el.children.length - 1];
  if (typeof last === 'string') el.children[el.children.length - 1] = last + s;
  else el.children.push(s);
}

const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g;

const BARE_AMP = /&(?!(?:#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);)/;

function decode(s: string): string {
  if (!s.includes('&')) return s;
  if (BARE_AMP.test(s)) throw new XmlError('bare "&" in text');
  return s.replace(ENTITY, (_m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (cp > 0 && cp <= 0x10ffff) return String.fromCodePoint(cp);
    }
    throw new XmlError(`unknown entity &${e};`);
  });
}

export function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

export function escapeAttr(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
}

// ---- helpers over parsed trees -------------------------------------------------------------

export function elementChildren(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) if (typeof c !== 'string') out.push(c);
  return out;
}

/** The first child element with this local name (and namespace, when given). */
export function child(el: XmlElement, local: string, ns?: string): XmlElement | undefined {
  for (const c of el.children) {
    if (typeof c !== 'string' && c.local === local && (ns === undefined || c.ns === ns)) return c;
  }
  return undefined;
}

/** Concatenated text content of an element (direct text children only). */
export function textOf(el: XmlElement): string {
  let s = '';
  for (const c of el.children) if (typeof c === 'string') s += c;
  return s;
}

/** A leaf: an element without element children. */
export function isLeaf(el: XmlElement): boolean {
  for (const c of el.children) if (typeof c !== 'string') return false;
  return true;
}

export function cloneElement(el: XmlElement): XmlElement {
  return {
    local: el.local,
    prefix: el.prefix,
    ns: el.ns,
    attrs: el.attrs.map((a) => ({ ...a })),
    nsDecls: el.nsDecls.map(([p, u]) => [p, u] as [string, string]),
    children: el.children.map((c) => (typeof c === 'string' ? c : cloneElement(c))),
    rawAttrs: el.rawAttrs,
  };
}

/**
 * Writes an element as stored data: unprefixed names with a default-namespace declaration
 * wherever the namespace changes, prefixed declarations kept (identityref values need them).
 */
export function serialize(el: XmlElement, parentNs = ''): string {
  const out: string[] = [];
  write(el, parentNs, out);
  return out.join('');
}

function write(el: XmlElement, parentNs: string, out: string[]): void {
  let tag = `<${el.local}`;
  if (el.ns !== parentNs) tag += ` xmlns="${escapeAttr(el.ns)}"`;
  for (const [p, u] of el.nsDecls) if (p !== '') tag += ` xmlns:${p}="${escapeAttr(u)}"`;
  for (const a of el.attrs) tag += ` ${a.name}="${escapeAttr(a.value)}"`;
  if (el.children.length === 0) {
    out.push(`${tag}/>`);
    return;
  }
  out.push(`${tag}>`);
  for (const c of el.children) {
    if (typeof c === 'string') out.push(escapeText(c));
    else write(c, el.ns, out);
  }
  out.push(`</${el.local}>`);
}
