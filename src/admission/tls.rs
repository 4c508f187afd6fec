//! The TLS server configuration: a PEM certificate chain and key, TLS 1.2 and 1.3 only,
//! the `ring` provider, ALPN `h2` and `http/1.1`.

use std::sync::Arc;

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("failed to read '{path}'")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or a malformed one.
    #[error("no valid PEM certificate in the certificate file")]
    Certificate(#[source] Option<rustls::pki_types::pem::Error>),
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[error("no valid PEM private key in the key file")]
    Key(#[source] rustls::pki_types::pem::Error),
    /// rustls refuses the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used together")]
    Config(#[source] rustls::Error),
}

/// Builds a server configuration from PEM text. Fails when the key does not match the
/// certificate, so a half-rotated pair is never served.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(Some(e)))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(None));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads() {
        let (cert, key) = pair("localhost");
        let config = server_config(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols.len(), 2);
    }

    #[test]
    fn a_mismatched_pair_is_refused() {
        let (cert, _) = pair("a");
        let (_, key) = pair("b");
        let err = server_config(cert.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::Config(_)), "{err:?}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            server_config(b"", b""),
            Err(TlsError::Certificate(None))
        ));
        let (cert, _) = pair("a");
        assert!(matches!(
            server_config(cert.as_bytes(), b"nope"),
            Err(TlsError::Key(_))
        ));
    }
}
