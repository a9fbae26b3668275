// NETCONF XML snippets that netconfd (yuma123, Debian's 2.13) accepts as shipped, with the
// modules ensureNetconfd() loads. ietf-interfaces gives an editable config tree without any
// server instrumentation (netconfd warns "SIL code ... not found" and stores the data as is).
import { randomUUID } from 'node:crypto';
import { EOM, NC_BASE_NS } from './constants.js';

export const IF_NS = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
export const IANA_IF_NS = 'urn:ietf:params:xml:ns:yang:iana-if-type';

export const CAP_BASE_10 = 'urn:ietf:params:netconf:base:1.0';
export const CAP_BASE_11 = 'urn:ietf:params:netconf:base:1.1';
export const CAP_CANDIDATE = 'urn:ietf:params:netconf:capability:candidate:1.0';

/** An interface name no other test (process, run) uses: tests share one netconfd. */
export function uniqueIfName(prefix = 'chgw'): string {
  return `${prefix}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `<config>` for edit-config: creates/merges interface `name` with a description. */
export function interfaceConfig(name: string, description = 'set by callhome-gateway tests'): string {
  return (
    `<config xmlns="${NC_BASE_NS}">` +
    `<interfaces xmlns="${IF_NS}"><interface>` +
    `<name>${esc(name)}</name>` +
    `<type xmlns:ianaift="${IANA_IF_NS}">ianaift:ethernetCsmacd</type>` +
    `<description>${esc(description)}</description>` +
    `</interface></interfaces></config>`
  );
}

/** `<config>` for edit-config that deletes interface `name` (clean up after a test). */
export function interfaceDeleteConfig(name: string): string {
  return (
    `<config xmlns="${NC_BASE_NS}" xmlns:nc="${NC_BASE_NS}">` +
    `<interfaces xmlns="${IF_NS}"><interface nc:operation="delete">` +
    `<name>${esc(name)}</name>` +
    `</interface></interfaces></config>`
  );
}

/** Subtree filter selecting the whole interfaces tree. */
export const INTERFACES_FILTER = `<interfaces xmlns="${IF_NS}"/>`;

/** Subtree filter selecting one interface. */
export function interfaceFilter(name: string): string {
  return `<interfaces xmlns="${IF_NS}"><interface><name>${esc(name)}</name></interface></interfaces>`;
}

/** A client `<hello>` advertising only base:1.0, so end-of-message framing follows (RFC 6242 §4.1). */
export const HELLO_BASE10 = `<?xml version="1.0" encoding="UTF-8"?>` + `<hello xmlns="${NC_BASE_NS}"><capabilities><capability>${CAP_BASE_10}</capability></capabilities></hello>`;

/** A client `<hello>` advertising base:1.0 and base:1.1 (chunked framing follows). */
export const HELLO_BASE11 =
  `<?xml version="1.0" encoding="UTF-8"?>` +
  `<hello xmlns="${NC_BASE_NS}"><capabilities>` +
  `<capability>${CAP_BASE_10}</capability><capability>${CAP_BASE_11}</capability>` +
  `</capabilities></hello>`;

/** Wraps an operation in `<rpc>`. */
export function rpc(messageId: string | number, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><rpc message-id="${messageId}" xmlns="${NC_BASE_NS}">${body}</rpc>`;
}

export const GET_CONFIG_RUNNING = '<get-config><source><running/></source></get-config>';
export const CLOSE_SESSION = '<close-session/>';
export const COMMIT = '<commit/>';

export function getConfigBody(source: 'running' | 'candidate' | 'startup', filter?: string): string {
  const f = filter ? `<filter type="subtree">${filter}</filter>` : '';
  return `<get-config><source><${source}/></source>${f}</get-config>`;
}

/** edit-config body; `config` is a `<config>` element such as interfaceConfig() returns. */
export function editConfigBody(target: 'running' | 'candidate', config: string): string {
  return `<edit-config><target><${target}/></target>${config}</edit-config>`;
}

export function lockBody(target: 'running' | 'candidate'): string {
  return `<lock><target><${target}/></target></lock>`;
}

export function unlockBody(target: 'running' | 'candidate'): string {
  return `<unlock><target><${target}/></target></unlock>`;
}

/** A message in end-of-message framing (base:1.0, RFC 6242 §4.3). */
export function eom(xml: string): string {
  return xml + EOM;
}

/** A message in chunked framing (base:1.1, RFC 6242 §4.2), as one chunk. */
export function chunked(xml: string): string {
  return `\n#${Buffer.byteLength(xml)}\n${xml}\n##\n`;
}
