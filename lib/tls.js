'use strict';

// The `tls` option: PEM strings or Buffers, checked for their types here (a
// TypeError naming the field) and for their content natively when the server
// starts (`listen()` rejects with code ERR_TLS_CONFIG).

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

const isPem = (v) => typeof v === 'string' || v instanceof Uint8Array;

const pemText = (v) =>
  typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');

/** One PEM value, or several (a chain, a list of CAs), as one text. */
function pemList(value, field, fail) {
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0 || !items.every(isPem)) fail(field, 'a PEM string or Buffer, or an array of them');
  return items.map(pemText).join('\n');
}

/** Validates `tls` into the JSON the native side reads (`TlsConfig`). */
function normalizeTls(tls, fail) {
  if (!isPlainObject(tls)) fail('tls', 'an object with cert and key');
  if (tls.pfx !== undefined) fail('tls.pfx', 'left out (PFX / PKCS#12 is not supported: pass cert and key as PEM)');
  if (tls.cert === undefined) fail('tls.cert', 'a PEM string or Buffer, or an array of them');
  if (!isPem(tls.key)) fail('tls.key', 'a PEM string or Buffer');
  const out = { cert: pemList(tls.cert, 'tls.cert', fail), key: pemText(tls.key), requestCert: false };
  if (tls.ca !== undefined) out.ca = pemList(tls.ca, 'tls.ca', fail);
  if (tls.passphrase !== undefined) {
    if (typeof tls.passphrase !== 'string') fail('tls.passphrase', 'a string');
    out.passphrase = tls.passphrase;
  }
  if (tls.requestCert !== undefined) {
    if (typeof tls.requestCert !== 'boolean') fail('tls.requestCert', 'a boolean');
    out.requestCert = tls.requestCert;
  }
  if (out.requestCert && out.ca === undefined) {
    fail('tls.ca', 'set when tls.requestCert is true (the CAs client certificates are checked against)');
  }
  // As Node's https with requestCert, clients without a valid certificate are
  // refused at the handshake; letting them in is not offered.
  if (tls.rejectUnauthorized !== undefined && tls.rejectUnauthorized !== true) {
    fail('tls.rejectUnauthorized', 'true or left out (unauthenticated clients are always refused with requestCert)');
  }
  return out;
}

module.exports = { normalizeTls };
