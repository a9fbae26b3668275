// The API's bearer tokens (admin and read) from the configuration: inline or as a file.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { AdminApi } from './admin.js';

/** A token given inline or as a file; the file is re-read on each call so it can be rotated. */
function tokenSource(logger: Logger, inline: string, file: string, key: string, unreadable: string): () => string {
  let warned = false;
  return () => {
    if (!file) return inline;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      if (!warned) {
        warned = true;
        logger.error({ file, err: (err as NodeJS.ErrnoException).code }, `${key} cannot be read: ${unreadable}`);
      }
      return '';
    }
  };
}

export function apiTokens(config: Config, logger: Logger): Pick<AdminApi, 'token' | 'readToken' | 'requireTokenForReads'> {
  const { http } = config;
  return {
    token: tokenSource(logger, http.adminToken, http.adminTokenFile, 'http.adminTokenFile', 'API writes are refused'),
    readToken: tokenSource(logger, http.readToken, http.readTokenFile, 'http.readTokenFile', 'API reads need the admin token'),
    requireTokenForReads: http.requireTokenForReads || http.readToken !== '' || http.readTokenFile !== '',
  };
}
