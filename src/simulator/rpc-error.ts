// An <rpc-error> (RFC 6241 §4.3) as a throwable value, so operations can fail from anywhere
// and the session turns the failure into exactly one reply.
import { escapeText } from './xml.js';

export type ErrorType = 'transport' | 'rpc' | 'protocol' | 'application';

export class RpcError extends Error {
  readonly type: ErrorType;
  readonly tag: string;
  /** error-info children, already XML (unprefixed names, base namespace inherited). */
  readonly info: string | undefined;

  constructor(type: ErrorType, tag: string, message: string, info?: string) {
    super(message);
    this.name = 'RpcError';
    this.type = type;
    this.tag = tag;
    this.info = info;
  }

  /** The <rpc-error> element; `p` is the prefix the reply uses for the base namespace. */
  toXml(p = ''): string {
    return (
      `<${p}rpc-error>` +
      `<${p}error-type>${this.type}</${p}error-type>` +
      `<${p}error-tag>${this.tag}</${p}error-tag>` +
      `<${p}error-severity>error</${p}error-severity>` +
      `<${p}error-message xml:lang="en">${escapeText(this.message)}</${p}error-message>` +
      (this.info ? `<${p}error-info>${p ? prefixInfo(this.info, p) : this.info}</${p}error-info>` : '') +
      `</${p}rpc-error>`
    );
  }
}

/** error-info elements are in the base namespace too; give them the reply's prefix. */
function prefixInfo(info: string, p: string): string {
  return info.replace(/<(\/?)([A-Za-z][\w-]*)/g, `<$1${p}$2`);
}
