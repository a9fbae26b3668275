// The simulated device's configuration: running and candidate datastores, their locks and the
// device's live NETCONF sessions, shared by every session of the device (RFC 6241 §8.3: the
// candidate is shared). Deliberately tiny: without a YANG schema, list entries are recognised
// by a first child leaf named like a key (`name`, `id`, …), which covers the usual test edits.
import { RpcError } from './rpc-error.js';
import { child, cloneElement, elementChildren, isLeaf, parseXml, textOf, type XmlElement } from './xml.js';
import { NETCONF_BASE_NS as BASE_NS } from '../netconf/vocabulary.js';

export const SIM_NS = 'urn:callhome-gateway:simulator';

export type DatastoreName = 'running' | 'candidate';
export type EditOperation = 'merge' | 'replace' | 'create' | 'delete' | 'remove' | 'none';

/** What the datastore needs from a session to kill it (RFC 6241 §7.9). */
export interface SessionHandle {
  readonly id: number;
  kill(reason: string): void;
}

const KEY_NAMES = new Set(['name', 'id', 'key', 'index', 'uid']);

export class DeviceDatastore {
  private running: XmlElement[];
  private candidate: XmlElement[];
  private candidateDirty = false;
  private readonly locks: Record<DatastoreName, number> = { running: 0, candidate: 0 };
  private readonly sessions = new Map<number, SessionHandle>();
  private lastSessionId = 0;

  constructor(hostname: string) {
    const initial = parseXml(
      `<config><system xmlns="${SIM_NS}"><hostname></hostname><location>lab</location></system>` +
        `<interfaces xmlns="${SIM_NS}"><interface><name>eth0</name><enabled>true</enabled></interface></interfaces></config>`,
    );
    const system = elementChildren(initial)[0]!;
    child(system, 'hostname')!.children.push(hostname);
    this.running = elementChildren(initial).map(store);
    this.candidate = this.running.map(cloneElement);
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** RFC 6241 §8.1: session-ids are unique and non-zero. */
  newSessionId(): number {
    return ++this.lastSessionId;
  }

  addSession(handle: SessionHandle): void {
    this.sessions.set(handle.id, handle);
  }

  /** Session ended: its locks go, and so do uncommitted changes under its candidate lock. */
  closeSession(id: number): void {
    if (!this.sessions.delete(id)) return;
    if (this.locks.running === id) this.locks.running = 0;
    if (this.locks.candidate === id) {
      // RFC 6241 §8.3.5.2: the candidate's changes are discarded when its lock holder goes
      this.locks.candidate = 0;
      this.discard();
    }
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** RFC 6241 §7.9 kill-session. */
  killSession(target: number, by: number): void {
    if (target === by) throw new RpcError('protocol', 'invalid-value', 'a session cannot kill itself; use close-session');
    const handle = this.sessions.get(target);
    if (!handle) throw new RpcError('protocol', 'invalid-value', `no session ${target}`);
    this.closeSession(target);
    handle.kill(`killed by session ${by}`);
  }

  // ---- locks (RFC 6241 §7.5, §7.6) ---------------------------------------------------------

  lock(ds: DatastoreName, sid: number): void {
    const holder = this.locks[ds];
    if (holder !== 0) throw lockDenied(holder, `${ds} is locked by session ${holder}`);
    if (ds === 'candidate' && this.candidateDirty) {
      // RFC 6241 §8.3.5.1: no lock on a candidate with uncommitted changes
      throw lockDenied(0, 'the candidate has uncommitted changes');
    }
    this.locks[ds] = sid;
  }

  unlock(ds: DatastoreName, sid: number): void {
    if (this.locks[ds] !== sid) {
      throw new RpcError('protocol', 'operation-failed', `${ds} is not locked by this session`);
    }
    this.locks[ds] = 0;
  }

  lockHolder(ds: DatastoreName): number {
    return this.locks[ds];
  }

  private checkWritable(ds: DatastoreName, sid: number): void {
    const holder = this.locks[ds];
    if (holder !== 0 && holder !== sid) {
      throw new RpcError('protocol', 'in-use', `${ds} is locked by session ${holder}`, sessionIdInfo(holder));
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  read(ds: DatastoreName): readonly XmlElement[] {
    return ds === 'running' ? this.running : this.candidate;
  }

  // ---- writes ------------------------------------------------------------------------------

  /** RFC 6241 §7.2 edit-config. All or nothing: the edit is applied to a copy. */
  edit(target: DatastoreName, config: XmlElement, defaultOperation: EditOperation, testOnly: boolean, sid: number): void {
    this.checkWritable(target, sid);
    const copy = this.read(target).map(cloneElement);
    for (const el of elementChildren(config)) applyEdit(copy, el, defaultOperation);
    if (testOnly) return;
    if (target === 'running') {
      this.running = copy;
    } else {
      this.candidate = copy;
      this.candidateDirty = true;
    }
  }

  /** RFC 6241 §8.3.4.1 commit. */
  commit(sid: number): void {
    this.checkWritable('running', sid);
    this.checkWritable('candidate', sid);
    this.running = this.candidate.map(cloneElement);
    this.candidateDirty = false;
  }

  /** RFC 6241 §8.3.4.2 discard-changes. */
  discardChanges(sid: number): void {
    this.checkWritable('candidate', sid);
    this.discard();
  }

  private discard(): void {
    this.candidate = this.running.map(cloneElement);
    this.candidateDirty = false;
  }
}

function lockDenied(holder: number, message: string): RpcError {
  return new RpcError('protocol', 'lock-denied', message, sessionIdInfo(holder));
}

function sessionIdInfo(id: number): string {
  return `<session-id>${id}</session-id>`;
}

// ---- edit-config ---------------------------------------------------------------------------

const OPERATIONS = new Set<EditOperation>(['merge', 'replace', 'create', 'delete', 'remove']);

function operationOf(el: XmlElement): EditOperation | undefined {
  const a = el.attrs.find((x) => x.local === 'operation' && x.ns === BASE_NS);
  if (!a) return undefined;
  if (!OPERATIONS.has(a.value as EditOperation)) {
    throw new RpcError('protocol', 'bad-attribute', `bad operation "${a.value}"`, `<bad-attribute>operation</bad-attribute><bad-element>${el.local}</bad-element>`);
  }
  return a.value as EditOperation;
}

/** Stored form: no operation attributes, no whitespace between elements. */
function store(el: XmlElement): XmlElement {
  const leaf = isLeaf(el);
  return {
    local: el.local,
    prefix: '',
    ns: el.ns,
    attrs: el.attrs.filter((a) => a.ns !== BASE_NS && a.prefix === ''),
    nsDecls: el.nsDecls.filter(([p, uri]) => p !== '' && uri !== BASE_NS),
    children: leaf ? el.children.slice() : elementChildren(el).map(store),
    rawAttrs: '',
  };
}

function sameName(a: XmlElement, b: XmlElement): boolean {
  return a.local === b.local && a.ns === b.ns;
}

/** The stored sibling an incoming element addresses, or -1. */
function findMatch(siblings: XmlElement[], incoming: XmlElement): number {
  if (isLeaf(incoming)) {
    // a leaf, or a leaf-list entry: prefer the same value, else the only one of that name
    const value = textOf(incoming).trim();
    let only = -1;
    let count = 0;
    for (let i = 0; i < siblings.length; i++) {
      const s = siblings[i]!;
      if (!sameName(s, incoming) || !isLeaf(s)) continue;
      if (textOf(s).trim() === value) return i;
      only = i;
      count++;
    }
    return count === 1 ? only : -1;
  }
  const first = elementChildren(incoming)[0];
  const key = first && isLeaf(first) && KEY_NAMES.has(first.local) ? first : undefined;
  for (let i = 0; i < siblings.length; i++) {
    const s = siblings[i]!;
    if (!sameName(s, incoming)) continue;
    if (!key) return i;
    const k = child(s, key.local, key.ns);
    if (k && textOf(k).trim() === textOf(key).trim()) return i;
  }
  return -1;
}

function applyEdit(siblings: XmlElement[], incoming: XmlElement, inherited: EditOperation): void {
  const op = operationOf(incoming) ?? inherited;
  const at = findMatch(siblings, incoming);
  switch (op) {
    case 'delete':
      if (at === -1) throw new RpcError('application', 'data-missing', `<${incoming.local}> does not exist`);
      siblings.splice(at, 1);
      return;
    case 'remove':
      if (at !== -1) siblings.splice(at, 1);
      return;
    case 'create':
      if (at !== -1) throw new RpcError('application', 'data-exists', `<${incoming.local}> already exists`);
      siblings.push(build(incoming));
      return;
    case 'replace':
      if (at === -1) siblings.push(build(incoming));
      else siblings[at] = build(incoming);
      return;
    case 'none':
    case 'merge': {
      if (at === -1 && op === 'none') {
        throw new RpcError('application', 'data-missing', `<${incoming.local}> does not exist`);
      }
      if (isLeaf(incoming)) {
        if (op === 'none') return;
        if (at === -1) siblings.push(store(incoming));
        else siblings[at] = store(incoming);
        return;
      }
      let target: XmlElement;
      if (at === -1) {
        target = { ...store({ ...incoming, children: [] }), children: [] };
        siblings.push(target);
      } else {
        target = siblings[at]!;
      }
      const kids = target.children as XmlElement[];
      for (const c of elementChildren(incoming)) applyEdit(kids, c, op);
      return;
    }
  }
}

/** A replaced or created subtree; nested operations inside it still apply (e.g. a delete fails). */
function build(incoming: XmlElement): XmlElement {
  if (isLeaf(incoming)) return store(incoming);
  const shell: XmlElement = { ...store({ ...incoming, children: [] }), children: [] };
  const kids = shell.children as XmlElement[];
  for (const c of elementChildren(incoming)) applyEdit(kids, c, 'merge');
  return shell;
}

// ---- subtree filtering (RFC 6241 §6) ------------------------------------------------------

/** Namespace-less filter elements match any namespace. */
function filterMatches(data: XmlElement, f: XmlElement): boolean {
  return data.local === f.local && (f.ns === '' || f.ns === data.ns);
}

function isContentMatch(f: XmlElement): boolean {
  return isLeaf(f) && textOf(f).trim() !== '';
}

export function subtreeFilter(data: readonly XmlElement[], filter: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const fs = elementChildren(filter);
  for (const d of data) {
    for (const f of fs) {
      if (!filterMatches(d, f)) continue;
      const r = filterOne(d, f);
      if (r) {
        out.push(r);
        break;
      }
    }
  }
  return out;
}

function filterOne(d: XmlElement, f: XmlElement): XmlElement | null {
  const fkids = elementChildren(f);
  if (fkids.length === 0) {
    const want = textOf(f).trim();
    if (want === '' || textOf(d).trim() === want) return cloneElement(d); // selection / content match
    return null;
  }
  const matches = fkids.filter(isContentMatch);
  const others = fkids.filter((k) => !isContentMatch(k));
  const dkids = elementChildren(d);
  for (const m of matches) {
    if (!dkids.some((k) => filterMatches(k, m) && textOf(k).trim() === textOf(m).trim())) return null;
  }
  if (others.length === 0) return cloneElement(d);
  const result: XmlElement = { ...cloneElement({ ...d, children: [] }), children: [] };
  let selected = 0;
  for (const k of dkids) {
    if (matches.some((m) => filterMatches(k, m))) {
      result.children.push(cloneElement(k));
      continue;
    }
    for (const o of others) {
      if (!filterMatches(k, o)) continue;
      const r = filterOne(k, o);
      if (r) {
        result.children.push(r);
        selected++;
        break;
      }
    }
  }
  return selected > 0 || matches.length > 0 ? result : null;
}
