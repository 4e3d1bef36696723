//! TLS trust for what the kit connects to (the identity provider's keys,
//! Redis): the system's CA certificates, or those of a PEM file for a
//! provider behind a private CA. PostgreSQL reads its own from the URL
//! (`sslrootcert`).

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The CA certificates of the PEM file at `path`; an error says why none
/// could be used.
pub fn root_store(path: &Path) -> Result<RootCertStore, String> {
    root_store_of(&std::fs::read(path).map_err(|error| format!("cannot read it: {error}"))?)
}

/// The CA certificates of the PEM text `pem`; an error says why none could
/// be used.
pub fn root_store_of(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not a PEM file of certificates: {error}"))?;
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err("holds no usable CA certificate".to_owned());
    }
    Ok(roots)
}

/// The system's CA certificates (those it could parse; a warning names
/// what could not be read).
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(error = %error, "reading the system's CA certificates");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}
