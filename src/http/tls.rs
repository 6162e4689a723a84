//! The `tls` option turned into a rustls server configuration: certificate
//! chain, private key (decrypted when it is encrypted PKCS#8), ALPN
//! `http/1.1`, and client certificates required when asked for. Built once
//! when the server starts; every failure is a [`TlsConfigError`].

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use pkcs8::der::zeroize::Zeroizing;
use pkcs8::der::Document;
use pkcs8::EncryptedPrivateKeyInfo;
use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::core::config::TlsConfig;

/// Why the `tls` option cannot be served: what is wrong, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError(pub String);

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

fn err(msg: impl Into<String>) -> TlsConfigError {
    TlsConfigError(msg.into())
}

const ENCRYPTED_PKCS8_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// The rustls configuration every TLS connection of a server shares.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let provider = Arc::new(ring::default_provider());
    let certs = certificates(&tls.cert, "tls.cert")?;
    let key = private_key(&tls.key, tls.passphrase.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS versions: {e}")))?;
    let builder = if tls.request_cert {
        let ca = tls.ca.as_deref().ok_or_else(|| {
            err("tls.requestCert needs tls.ca: the CAs client certificates are checked against")
        })?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca, "tls.ca")? {
            roots
                .add(cert)
                .map_err(|e| err(format!("tls.ca: not a usable CA certificate: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| err(format!("tls.ca: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            err("tls.key does not match the certificate in tls.cert")
        }
        e => err(format!("tls.cert / tls.key: {e}")),
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every `CERTIFICATE` block of a PEM text; at least one.
fn certificates(text: &str, field: &str) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("{field}: malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(format!(
            "{field}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        )));
    }
    Ok(certs)
}

/// The private key of a PEM text: plain PKCS#8, PKCS#1 or SEC1, or an
/// encrypted PKCS#8 key opened with `passphrase`.
fn private_key(
    text: &str,
    passphrase: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(err(
            "tls.key: legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; \
             convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
        ));
    }
    if let Some(block) = pem_block(text, ENCRYPTED_PKCS8_LABEL) {
        let passphrase =
            passphrase.ok_or_else(|| err("tls.key is encrypted: tls.passphrase is required"))?;
        return decrypt_pkcs8(block, passphrase);
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => err(
            "tls.key: no PEM private key found (PRIVATE KEY, RSA PRIVATE KEY, \
             EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)",
        ),
        e => err(format!("tls.key: malformed PEM: {e}")),
    })
}

/// The first `-----BEGIN {label}-----` ... `-----END {label}-----` block.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

fn decrypt_pkcs8(block: &str, passphrase: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    // Lines may end in CRLF; the PEM decoder takes LF.
    let block = Zeroizing::new(block.replace("\r\n", "\n"));
    let (_, doc) = Document::from_pem(&block)
        .map_err(|e| err(format!("tls.key: malformed encrypted PEM: {e}")))?;
    let info = EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|e| err(format!("tls.key: malformed encrypted PKCS#8 key: {e}")))?;
    let supported = info.encryption_algorithm.pbes2().is_some();
    if !supported {
        return Err(err(
            "tls.key: only PBES2 (PBKDF2 or scrypt, AES-CBC) encrypted keys are supported; \
             convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
        ));
    }
    let secret = info.decrypt(passphrase).map_err(|e| match e {
        // pkcs5 0.7 reports a padding failure as `EncryptFailed`.
        pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        ) => err("tls.passphrase does not decrypt tls.key (wrong passphrase)"),
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            err(format!(
                "tls.key: its encryption ({oid}) is not supported; \
                 convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
            ))
        }
        e => err(format!("tls.key: cannot decrypt: {e}")),
    })?;
    // A wrong passphrase can still unpad by chance: then what comes out is
    // not a key.
    if pkcs8::PrivateKeyInfo::try_from(secret.as_bytes()).is_err() {
        return Err(err(
            "tls.passphrase does not decrypt tls.key (wrong passphrase)",
        ));
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        secret.as_bytes().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/__test__/fixtures/tls/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}{name}"))
            .expect("fixture (scripts/make-test-certs.sh)")
    }

    fn tls(cert: &str, key: &str) -> TlsConfig {
        TlsConfig {
            cert: fixture(cert),
            key: fixture(key),
            ..TlsConfig::default()
        }
    }

    fn refusal(cfg: &TlsConfig) -> String {
        match server_config(cfg) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_matching_cert_and_key_serve_http_1_1_only() {
        let config = server_config(&tls("server.pem", "server.key")).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let msg = refusal(&tls("server.pem", "other.key"));
        assert!(msg.contains("does not match"), "{msg}");
    }

    #[test]
    fn text_without_a_certificate_or_key_is_refused_naming_the_field() {
        let mut cfg = tls("server.pem", "server.key");
        cfg.cert = "not a certificate".into();
        assert!(refusal(&cfg).starts_with("tls.cert:"));
        let mut cfg = tls("server.pem", "server.key");
        cfg.key = fixture("server.pem");
        assert!(refusal(&cfg).starts_with("tls.key:"));
    }

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only() {
        let mut cfg = tls("server.pem", "server.enc.key");
        assert!(refusal(&cfg).contains("tls.passphrase is required"));
        cfg.passphrase = Some("wrong".into());
        let msg = refusal(&cfg);
        assert!(msg.contains("wrong passphrase"), "{msg}");
        cfg.passphrase = Some("runner-test-passphrase".into());
        server_config(&cfg).expect("decrypted");
        cfg.key = cfg.key.replace('\n', "\r\n");
        server_config(&cfg).expect("decrypted with CRLF lines");
    }

    #[test]
    fn legacy_encrypted_pem_is_refused_with_how_to_convert() {
        let mut cfg = tls("server.pem", "server.key");
        cfg.key = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                   DEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"
            .into();
        assert!(refusal(&cfg).contains("openssl pkcs8 -topk8"));
    }

    #[test]
    fn client_certificates_need_a_ca() {
        let mut cfg = tls("server.pem", "server.key");
        cfg.request_cert = true;
        assert!(refusal(&cfg).contains("tls.ca"));
        cfg.ca = Some(fixture("ca.pem"));
        server_config(&cfg).expect("config");
    }
}
