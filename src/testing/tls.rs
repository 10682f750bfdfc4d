//! [`TlsFiles`]: a private CA and a server certificate for 127.0.0.1, made
//! with the `openssl` command-line tool, for a TLS [`RedisServer`].
//!
//! [`RedisServer`]: super::RedisServer

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private CA (P-256) and a server certificate it signed for the IP
/// address 127.0.0.1 (and the name `localhost`), valid for two days, in a
/// temporary directory removed on drop.
///
/// ```no_run
/// use warmcache::testing::{RedisServer, TlsFiles};
///
/// let files = TlsFiles::generate();
/// let server = RedisServer::start_tls(&files.cert, &files.key, &files.ca);
/// let mut config = server.config();
/// config.use_tls = true;
/// config.tls_ca_file = Some(files.ca.clone());
/// ```
#[derive(Debug)]
pub struct TlsFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, unencrypted: test use only).
    pub key: PathBuf,
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl CLI must be installed: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TlsFiles {
    /// Makes the CA, the server key and its certificate.
    ///
    /// # Panics
    /// If `openssl` is not installed or fails (its stderr is in the message).
    pub fn generate() -> Self {
        let dir = super::temp_dir("tls");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=warmcache test CA",
                ],
                &[
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", ext.display()));
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            dir,
        }
    }
}
