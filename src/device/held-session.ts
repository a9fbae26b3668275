// The held session lives in held/: a core of pure parts and the adapter that binds them to streams.
export { HeldSession, type HeldSessionDeps, type HeldSessionOptions, type ServeResult } from './held/session.js';
export { targetDatastore } from './held/session-locks.js';
