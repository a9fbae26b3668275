// `callhome-gateway certs …`: the CA and the gateway's client certificate, device
// certificates and CRLs, all from node-forge, so no OpenSSL command line is needed.
// Errors are GatewayError('GW_ERR_USAGE') (exit 2) or plain Errors (exit 1), one line each.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { loadConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { DEVICE_ID_RE } from '../inventory/inventory.js';
import { IDENTITY_FIELDS, createCrl, initCertificates, issueDeviceFiles, issuePeerFiles, loadCa, tlsPaths, type IdentityField } from '../tls/certs.js';

export const CERTS_HELP = `Usage: callhome-gateway certs <init|issue|peer|crl> [options]

  certs init [--config FILE]... [--force]
      Creates a CA and the gateway's TLS client certificate in <stateDir>/tls
      (ca.crt, ca.key, gateway.crt, gateway.key). Existing material is kept unless --force.
  certs issue --device ID [--field cn|serialNumber|san] [--out DIR] [--days N] [--config FILE]...
      Issues a device (TLS server) certificate signed by that CA, carrying ID in the chosen
      field (default cn). Writes DIR/ID.crt, DIR/ID.key and DIR/ca.crt (what the device
      must trust to accept the gateway); DIR defaults to the current directory.
  certs peer [--out DIR] [--days N] [--config FILE]...
      Issues this replica's peer certificate (cluster mode: mutual TLS between replicas)
      from that CA. Writes DIR/peer.crt, DIR/peer.key and DIR/ca.crt; without --out, to
      cluster.peer.certFile, cluster.peer.keyFile and cluster.peer.caFile.
  certs crl [--revoke SERIAL]... [--out FILE] [--days N] [--config FILE]...
      Writes a CRL signed by the CA revoking the given serial numbers (hex, as
      \`openssl x509 -serial\` prints them); FILE defaults to <stateDir>/tls/ca.crl.
      Point an inventory entry's tls.crl at it.`;

const usage = (m: string) => new GatewayError('GW_ERR_USAGE', m);

export async function runCerts(argv: string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  const [sub, ...args] = argv;
  const { values } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      config: { type: 'string', short: 'c', multiple: true },
      force: { type: 'boolean' },
      device: { type: 'string' },
      field: { type: 'string' },
      out: { type: 'string' },
      days: { type: 'string' },
      revoke: { type: 'string', multiple: true },
    },
  });
  const config = loadConfig(values.config ?? []);
  const stateDir = config.stateDir;
  const days = values.days === undefined ? undefined : Number(values.days);
  if (days !== undefined && !(Number.isFinite(days) && days > 0)) throw usage(`--days must be a positive number, not "${values.days}"`);
  switch (sub) {
    case 'init': {
      const r = initCertificates(stateDir, { force: values.force === true });
      out(`${r.created ? 'created' : 'kept existing'} CA ${r.paths.caCert} and gateway certificate ${r.paths.gatewayCert}`);
      out(`gateway certificate: sha256 Fingerprint=${new X509Certificate(readFileSync(r.paths.gatewayCert)).fingerprint256}`);
      return 0;
    }
    case 'issue': {
      const id = values.device;
      if (id === undefined) throw usage('certs issue needs --device ID');
      if (!DEVICE_ID_RE.test(id)) throw usage(`--device "${id}" is not a device id (1..64 characters of [A-Za-z0-9._-])`);
      const field = (values.field ?? 'cn') as IdentityField;
      if (!IDENTITY_FIELDS.includes(field)) throw usage(`--field must be one of ${IDENTITY_FIELDS.join(', ')}`);
      const files = issueDeviceFiles(stateDir, { id, field, outDir: values.out ?? '.', ...(days ? { days } : {}) });
      out(`device certificate ${files.cert}, key ${files.key}, gateway CA ${files.ca}`);
      out(`serial ${files.serial.toUpperCase()}`);
      out(`sha256 Fingerprint=${new X509Certificate(readFileSync(files.cert)).fingerprint256}`);
      return 0;
    }
    case 'peer': {
      const { peer } = config.cluster;
      const files =
        values.out !== undefined
          ? { cert: path.join(values.out, 'peer.crt'), key: path.join(values.out, 'peer.key'), ca: path.join(values.out, 'ca.crt') }
          : { cert: peer.certFile, key: peer.keyFile, ca: peer.caFile };
      const { serial } = issuePeerFiles(stateDir, files, days ? { days } : {});
      out(`peer certificate ${files.cert}, key ${files.key}, CA ${files.ca}`);
      out(`serial ${serial.toUpperCase()}`);
      out(`sha256 Fingerprint=${new X509Certificate(readFileSync(files.cert)).fingerprint256}`);
      return 0;
    }
    case 'crl': {
      const ca = loadCa(stateDir);
      const serials = values.revoke ?? [];
      for (const s of serials) if (!/^[0-9A-Fa-f:]+$/.test(s)) throw usage(`--revoke "${s}" is not a hex serial number`);
      const file = values.out ?? path.join(tlsPaths(stateDir).dir, 'ca.crl');
      writeFileSync(file, createCrl(ca, serials, days ? { days } : {}));
      out(`CRL ${file} revoking ${serials.length} certificate(s)`);
      return 0;
    }
    default:
      throw usage(sub === undefined ? 'certs needs a subcommand: init, issue, peer or crl' : `unknown certs subcommand "${sub}"`);
  }
}
