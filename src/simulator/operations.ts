// The RFC 6241 operations a simulated device answers, on its datastore: get, get-config,
// edit-config, validate, commit, discard-changes, lock, unlock, close-session and
// kill-session. The session (netconf-server.ts) reads and frames the messages; this decides
// what each operation does and answers.
import { NETCONF_BASE_NS as BASE_NS } from '../netconf/vocabulary.js';
import { SIM_NS, subtreeFilter, type DatastoreName, type DeviceDatastore, type EditOperation } from './datastore.js';
import { RpcError } from './rpc-error.js';
import { child, elementChildren, escapeText, textOf, type XmlElement } from './xml.js';

/** What an operation needs of the session it runs in. */
export interface OperationSession {
  readonly id: number;
  readonly datastore: DeviceDatastore;
  /** Answers with `inner` inside the <rpc-reply>. */
  reply(inner: string): Promise<void>;
  /** Answers with a <data> reply; `bulk` adds the configured filler. */
  data(elements: readonly XmlElement[], bulk: boolean): Promise<void>;
  /** The simulator's own state subtree (session-id, sessions). */
  state(): XmlElement;
  /** Releases the session and ends the stream (after <close-session>'s reply). */
  end(): void;
}

/** Runs `op`, the operation of an <rpc> whose elements use `prefix`; throws RpcError to refuse it. */
export async function runOperation(session: OperationSession, op: XmlElement, prefix: string): Promise<void> {
  const ok = `<${prefix}ok/>`;
  const ds = session.datastore;
  switch (op.local) {
    case 'get': {
      const filter = readFilter(op);
      const data = [...ds.read('running'), session.state()];
      return session.data(filter ? subtreeFilter(data, filter) : data, !filter || filterSelectsBulk(filter));
    }
    case 'get-config': {
      const source = datastoreParam(op, 'source');
      const filter = readFilter(op);
      const data = ds.read(source);
      return session.data(filter ? subtreeFilter(data, filter) : data, !filter || filterSelectsBulk(filter));
    }
    case 'edit-config': {
      const target = datastoreParam(op, 'target');
      const defaultOperation = enumParam(op, 'default-operation', ['merge', 'replace', 'none'], 'merge') as EditOperation;
      const testOption = enumParam(op, 'test-option', ['test-then-set', 'set', 'test-only'], 'test-then-set');
      enumParam(op, 'error-option', ['stop-on-error', 'continue-on-error', 'rollback-on-error'], 'stop-on-error');
      const config = child(op, 'config', BASE_NS);
      if (!config) {
        if (child(op, 'url', BASE_NS)) throw new RpcError('protocol', 'operation-not-supported', 'the :url capability is not supported');
        throw missing('config');
      }
      ds.edit(target, config, defaultOperation, testOption === 'test-only', session.id);
      return session.reply(ok);
    }
    case 'validate': {
      const source = child(op, 'source', BASE_NS);
      if (!source) throw missing('source');
      const what = elementChildren(source)[0];
      if (!what || !['running', 'candidate', 'config'].includes(what.local)) {
        throw new RpcError('protocol', 'invalid-value', 'validate needs <running/>, <candidate/> or <config>');
      }
      return session.reply(ok);
    }
    case 'commit':
      if (child(op, 'confirmed', BASE_NS)) throw new RpcError('protocol', 'operation-not-supported', 'the :confirmed-commit capability is not supported');
      ds.commit(session.id);
      return session.reply(ok);
    case 'discard-changes':
      ds.discardChanges(session.id);
      return session.reply(ok);
    case 'lock':
      ds.lock(datastoreParam(op, 'target'), session.id);
      return session.reply(ok);
    case 'unlock':
      ds.unlock(datastoreParam(op, 'target'), session.id);
      return session.reply(ok);
    case 'close-session':
      // RFC 6241 §7.8: reply, then release everything and close
      await session.reply(ok);
      session.end();
      return;
    case 'kill-session': {
      const sid = child(op, 'session-id', BASE_NS);
      if (!sid) throw missing('session-id');
      const n = Number(textOf(sid).trim());
      if (!Number.isInteger(n) || n <= 0) throw new RpcError('protocol', 'invalid-value', 'bad session-id', '<bad-element>session-id</bad-element>');
      ds.killSession(n, session.id);
      return session.reply(ok);
    }
    default:
      throw notSupported(op);
  }
}

export function notSupported(op: XmlElement): RpcError {
  return new RpcError('protocol', 'operation-not-supported', `<${op.local}> is not supported`, `<bad-element>${escapeText(op.local)}</bad-element>`);
}

function missing(name: string): RpcError {
  return new RpcError('protocol', 'missing-element', `<${name}> is missing`, `<bad-element>${name}</bad-element>`);
}

function datastoreParam(op: XmlElement, name: 'source' | 'target'): DatastoreName {
  const el = child(op, name, BASE_NS);
  if (!el) throw missing(name);
  const which = elementChildren(el)[0];
  if (which && which.ns === BASE_NS && (which.local === 'running' || which.local === 'candidate')) return which.local;
  throw new RpcError('protocol', 'invalid-value', `<${name}> must be <running/> or <candidate/>`, `<bad-element>${name}</bad-element>`);
}

function enumParam(op: XmlElement, name: string, allowed: string[], dflt: string): string {
  const el = child(op, name, BASE_NS);
  if (!el) return dflt;
  const v = textOf(el).trim();
  if (!allowed.includes(v)) throw new RpcError('protocol', 'invalid-value', `bad <${name}> "${v}"`, `<bad-element>${name}</bad-element>`);
  return v;
}

function readFilter(op: XmlElement): XmlElement | undefined {
  const f = child(op, 'filter', BASE_NS);
  if (!f) return undefined;
  const type = f.attrs.find((a) => a.local === 'type' && (a.ns === '' || a.ns === BASE_NS))?.value ?? 'subtree';
  if (type !== 'subtree')
    throw new RpcError(
      'protocol',
      'operation-not-supported',
      `${type} filters are not supported (no :xpath)`,
      '<bad-attribute>type</bad-attribute><bad-element>filter</bad-element>',
    );
  return f;
}

/** The filler is a virtual top-level `bulk` element: a filter gets it only by asking for it. */
function filterSelectsBulk(filter: XmlElement): boolean {
  return elementChildren(filter).some((f) => f.local === 'bulk' && (f.ns === '' || f.ns === SIM_NS) && elementChildren(f).length === 0 && textOf(f).trim() === '');
}
