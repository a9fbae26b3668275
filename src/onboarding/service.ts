// Onboarding: devices that called and are not in the inventory (pending), and the operator's
// decisions on them (approvals, kept in the ApprovalStore). Answers in domain terms; the
// HTTP side maps them to status codes (src/http/onboarding.ts).
import type { SharedState } from '../cluster/shared-state.js';
import type { Config } from '../config.js';
import { GatewayError, describeError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../log.js';
import { ApprovalStore, OnboardingPending, isFingerprint, loadMergedInventory, type Approval, type ApprovalChange } from './approvals.js';

export type OnboardingProblem =
  /** The request is malformed (fingerprint, body): HTTP 400. */
  | 'invalid'
  /** No such pending (or approved) device: HTTP 404. */
  | 'not_found'
  /** It would clash with the inventory file or a port: HTTP 409. */
  | 'conflict'
  /** Cluster mode: the decision cannot be recorded while Redis is unreachable: HTTP 503. */
  | 'unavailable';

export type ApproveResult = { ok: true; approval: Approval } | { ok: false; problem: OnboardingProblem; message: string };
export type RejectResult = { ok: true; fingerprint: string } | { ok: false; problem: OnboardingProblem; message: string };

export interface OnboardingDeps {
  config: Config;
  logger: Logger;
  inventory(): Inventory;
  /** What a port is to the gateway itself (its listeners, northbound.portRange), or undefined. */
  reservedPort(port: number): string | undefined;
  /** The device ports listening now (device id → port). */
  devicePorts(): Map<string, number>;
  /** Called after each decision, so the merged inventory takes it up. */
  changed(): void;
  /** Cluster mode: decisions and the pending list live in Redis, shared by every replica. */
  shared?: SharedState;
}

export class Onboarding {
  readonly approvals: ApprovalStore;
  readonly pending: OnboardingPending;
  private approvedIds = new Set<string>();
  /** Records a decision where every replica sees it (cluster mode), before it counts here. */
  private readonly share: (change: ApprovalChange) => Promise<void>;

  constructor(private readonly deps: OnboardingDeps) {
    const { shared } = deps;
    this.approvals = new ApprovalStore(deps.config.stateDir, { secretsDir: deps.config.onboarding.secretsDir, file: !shared });
    const isRejected = (fp: string) => this.approvals.isRejected(fp);
    this.pending = shared ? shared.bindPending(isRejected) : new OnboardingPending(isRejected);
    const approvals = shared?.bindApprovals(this.approvals);
    this.share = approvals ? (change) => approvals.write(change) : () => Promise.resolve();
  }

  /** Whether a device of the inventory came from an approval (not from the inventory file). */
  isApproved(id: string): boolean {
    return this.approvedIds.has(id);
  }

  /** The inventory file merged with the operator's approvals (the file wins on conflict). */
  loadInventory(): Inventory {
    const { inventory, approvedIds } = loadMergedInventory(this.deps.config.inventory.file, this.approvals, this.deps.logger, this.deps.reservedPort);
    this.approvedIds = approvedIds;
    // A key the inventory now lists, or one rejected (on another replica too), is no longer pending.
    for (const p of this.pending.list()) if (inventory.byHostKey(p.fingerprint) || this.approvals.isRejected(p.fingerprint)) this.pending.forget(p.fingerprint);
    return inventory;
  }

  async approve(fingerprint: string, body: unknown): Promise<ApproveResult> {
    if (!isFingerprint(fingerprint)) return { ok: false, problem: 'invalid', message: 'not a SHA256 fingerprint' };
    let seen;
    try {
      seen = await this.pending.find(fingerprint);
    } catch (err) {
      return refusal(err);
    }
    if (!seen) return { ok: false, problem: 'not_found', message: `no pending device with fingerprint ${fingerprint}` };
    const id = (body as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && this.deps.inventory().get(id) && !this.approvedIds.has(id)) {
      return { ok: false, problem: 'conflict', message: `device id ${id} is already in the inventory file` };
    }
    const portConflict = this.portConflict((body as { port?: unknown } | null)?.port, id);
    if (portConflict) return { ok: false, problem: 'conflict', message: portConflict };
    let approval: Approval;
    try {
      approval = this.approvals.prepare(fingerprint, seen.keyType, body);
      await this.share({ kind: 'approve', approval });
      this.approvals.commit({ kind: 'approve', approval });
    } catch (err) {
      return refusal(err);
    }
    this.pending.forget(fingerprint);
    this.deps.logger.info({ device: approval.id, fingerprint, keyType: approval.keyType }, 'device approved');
    this.deps.changed();
    return { ok: true, approval };
  }

  async reject(fingerprint: string): Promise<RejectResult> {
    if (!isFingerprint(fingerprint)) return { ok: false, problem: 'invalid', message: 'not a SHA256 fingerprint' };
    // Only a key that called (pending) or was approved: the rejected list is not a place
    // any caller can fill with made-up fingerprints.
    try {
      if (!(await this.pending.find(fingerprint)) && !this.approvals.isApproved(fingerprint)) {
        return { ok: false, problem: 'not_found', message: `no pending or approved device with fingerprint ${fingerprint}` };
      }
      const change: ApprovalChange = { kind: 'reject', fingerprint, rejectedAt: new Date().toISOString() };
      await this.share(change);
      this.approvals.commit(change);
    } catch (err) {
      return refusal(err);
    }
    this.pending.forget(fingerprint);
    this.deps.logger.info({ fingerprint }, 'device rejected for good');
    this.deps.changed();
    return { ok: true, fingerprint };
  }

  /** Why an approval may not have `port`: the gateway's own, or another device's. */
  private portConflict(port: unknown, id: unknown): string | undefined {
    if (typeof port !== 'number') return undefined; // the store validates the shape
    const reserved = this.deps.reservedPort(port);
    if (reserved) return `port ${port} is ${reserved}`;
    for (const [other, p] of this.deps.devicePorts()) {
      if (p === port && other !== id) return `port ${port} belongs to device ${other}`;
    }
    const owner = [...this.deps.inventory().devices.values()].find((e) => e.port === port && e.id !== id);
    return owner ? `port ${port} belongs to device ${owner.id}` : undefined;
  }
}

/** A decision that could not be recorded: unavailable while the cluster's Redis is unreachable, else invalid. */
function refusal(err: unknown): { ok: false; problem: OnboardingProblem; message: string } {
  const unavailable = err instanceof GatewayError && err.code === 'GW_ERR_CLUSTER_UNAVAILABLE';
  return { ok: false, problem: unavailable ? 'unavailable' : 'invalid', message: describeError(err) };
}
