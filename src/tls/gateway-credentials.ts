// The gateway's TLS client certificate (RFC 8071 §4.2 C4). Taken from callhome.tls.certFile /
// keyFile when set (a mounted Secret), else from <stateDir>/tls, created there on first start
// like the northbound host key, so enabling TLS call home needs no manual step.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { initCertificates, tlsPaths } from './certs.js';

export interface GatewayTlsCredentials {
  cert: string;
  key: string;
  certFile: string;
  generated: boolean;
}

export function loadGatewayTlsCredentials(config: Config): GatewayTlsCredentials {
  const { certFile, keyFile } = config.callhome.tls;
  let generated = false;
  let files: { cert: string; key: string };
  if (certFile !== '' || keyFile !== '') {
    if (certFile === '' || keyFile === '') {
      throw new GatewayError('GW_ERR_CONFIG', 'callhome.tls.certFile and callhome.tls.keyFile go together');
    }
    files = { cert: certFile, key: keyFile };
  } else {
    generated = initCertificates(config.stateDir).created;
    const p = tlsPaths(config.stateDir);
    files = { cert: p.gatewayCert, key: p.gatewayKey };
  }
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new GatewayError('GW_ERR_CONFIG', `callhome.tls.${key} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return { cert: read(files.cert, 'certFile'), key: read(files.key, 'keyFile'), certFile: files.cert, generated };
}
