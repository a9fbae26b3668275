// Maps the onboarding service's answers (src/onboarding/service.ts) to HTTP.
import type { Onboarding, OnboardingProblem } from '../onboarding/service.js';
import { describeCredentials } from '../onboarding/approvals.js';
import type { AdminApi, AdminAnswer } from './admin.js';

const STATUS: Record<OnboardingProblem, number> = { invalid: 400, not_found: 404, conflict: 409, unavailable: 503 };

function refused(problem: OnboardingProblem, message: string): AdminAnswer {
  return { status: STATUS[problem], body: { error: message } };
}

export function onboardingAnswers(onboarding: Onboarding): Pick<AdminApi, 'approve' | 'reject'> {
  return {
    approve: async (fingerprint, body) => {
      const r = await onboarding.approve(fingerprint, body);
      if (!r.ok) return refused(r.problem, r.message);
      const a = r.approval;
      return {
        status: 201,
        body: { id: a.id, fingerprint: a.fingerprint, keyType: a.keyType, approvedAt: a.approvedAt, port: a.port ?? null, credentials: describeCredentials(a.credentials) },
      };
    },
    reject: async (fingerprint) => {
      const r = await onboarding.reject(fingerprint);
      return r.ok ? { status: 200, body: { fingerprint: r.fingerprint, state: 'rejected' } } : refused(r.problem, r.message);
    },
  };
}
