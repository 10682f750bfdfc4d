//! Builds the Google client for the configured [`Credentials`].
//!
//! - Emulator: plain HTTP to `http://HOST/bigquery/v2` with a dummy token.
//! - Key file: read and checked here, so a missing, unreadable or malformed
//!   file stops start-up with a message naming the file (never its contents).
//! - Application default credentials: on Google Cloud the metadata server
//!   (workload identity), elsewhere a `gcloud auth application-default` login.

use std::future::Future;
use std::io::ErrorKind;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::yup_oauth2::ServiceAccountKey;

use crate::source::{BigQuerySetupError, Credentials};

/// The client, and where it sends queries (for logs; no secrets).
pub(crate) async fn client(
    credentials: &Credentials,
) -> Result<(Client, String), BigQuerySetupError> {
    let setup = |e: BQError| BigQuerySetupError::Client(e.to_string());
    match credentials {
        Credentials::Emulator(host) => {
            let client = ClientBuilder::new()
                .with_v2_base_url(format!("http://{host}/bigquery/v2"))
                .build_from_authenticator(Arc::new(NoCredentials))
                .await
                .map_err(setup)?;
            Ok((client, format!("the emulator at {host}")))
        }
        Credentials::KeyFile(path) => {
            let endpoint = format!("BigQuery, as the account in {}", path.display());
            let client = match read_key_file(path)? {
                KeyFile::ServiceAccount(key) => ClientBuilder::new()
                    .build_from_service_account_key(*key, false)
                    .await
                    .map_err(|e| key_error(path, &e))?,
                KeyFile::AuthorizedUser => ClientBuilder::new()
                    .build_from_authorized_user_authenticator(path)
                    .await
                    .map_err(|e| key_error(path, &e))?,
            };
            Ok((client, endpoint))
        }
        Credentials::ApplicationDefault => {
            let client = ClientBuilder::new()
                .build_from_application_default_credentials()
                .await
                .map_err(setup)?;
            Ok((
                client,
                "BigQuery, with application default credentials".to_owned(),
            ))
        }
    }
}

/// The emulator ignores the `Authorization` header; this sends a fixed one.
#[derive(Debug, Clone, Copy)]
struct NoCredentials;

impl Authenticator for NoCredentials {
    // The trait is declared with `#[async_trait]`; this is its expansion.
    fn access_token<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<String, BQError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Ok("emulator".to_owned()) })
    }
}

enum KeyFile {
    ServiceAccount(Box<ServiceAccountKey>),
    AuthorizedUser,
}

/// Reads and classifies a key file. Errors never quote the file's contents.
fn read_key_file(path: &Path) -> Result<KeyFile, BigQuerySetupError> {
    let problem = |problem: String| BigQuerySetupError::KeyFile {
        path: path.to_owned(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        problem(match e.kind() {
            ErrorKind::NotFound => "the file does not exist".to_owned(),
            ErrorKind::PermissionDenied => "permission denied reading the file".to_owned(),
            ErrorKind::IsADirectory => "it is a directory, not a key file".to_owned(),
            kind => format!("cannot read the file: {kind}"),
        })
    })?;
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let kind: Kind = serde_json::from_slice(&bytes).map_err(|e| {
        problem(format!(
            "not a JSON key file (syntax error at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match kind.kind.as_deref() {
        Some("service_account") => serde_json::from_slice::<ServiceAccountKey>(&bytes)
            .map(|key| KeyFile::ServiceAccount(Box::new(key)))
            .map_err(|e| {
                // "missing field `x`" names a field; other serde messages
                // may quote a value, which could be key material.
                let text = e.to_string();
                problem(if text.starts_with("missing field") {
                    format!("not a complete service-account key: {text}")
                } else {
                    format!(
                        "not a valid service-account key (a field has the wrong type at line {}, column {})",
                        e.line(),
                        e.column()
                    )
                })
            }),
        Some("authorized_user") => Ok(KeyFile::AuthorizedUser),
        Some(other) => Err(problem(format!(
            "credentials of type {:?} are not supported; use a service-account key (\"service_account\") or unset it to use the metadata server",
            other.chars().take(40).collect::<String>()
        ))),
        None => Err(problem(
            "not a Google credentials file (it has no \"type\" field)".to_owned(),
        )),
    }
}

/// A key the Google libraries rejected. Their messages are about formats
/// and I/O, not key contents, but only the kind of failure is kept.
fn key_error(path: &Path, error: &BQError) -> BigQuerySetupError {
    let problem = match error {
        BQError::InvalidServiceAccountKey(e)
        | BQError::InvalidServiceAccountAuthenticator(e)
        | BQError::InvalidAuthorizedUserAuthenticator(e) => {
            format!("the Google client rejected the key ({})", e.kind())
        }
        _ => "the Google client rejected the key".to_owned(),
    };
    BigQuerySetupError::KeyFile {
        path: path.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(contents: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "warmcache-key-{}-{}.json",
            std::process::id(),
            contents.len()
        ));
        std::fs::write(&path, contents).expect("write");
        let result = read_key_file(&path);
        let _ = std::fs::remove_file(&path);
        match result {
            Ok(_) => "accepted".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_key_files_are_named_and_never_quoted() {
        let secret = "-----BEGIN PRIVATE KEY-----SUPERSECRET";
        for (contents, expected) in [
            (
                format!("{{\"private_key\": \"{secret}\""),
                "not a JSON key file",
            ),
            (
                format!("{{\"private_key\": \"{secret}\"}}"),
                "no \"type\" field",
            ),
            (
                format!("{{\"type\": \"service_account\", \"private_key\": \"{secret}\"}}"),
                "missing field",
            ),
            (
                format!(
                    "{{\"type\": \"service_account\", \"private_key\": 7, \"client_email\": \"{secret}\"}}"
                ),
                "wrong type",
            ),
            (
                format!("{{\"type\": \"external_account\", \"x\": \"{secret}\"}}"),
                "not supported",
            ),
        ] {
            let message = error_for(&contents);
            assert!(message.contains(expected), "{message}");
            assert!(
                message.contains("GOOGLE_APPLICATION_CREDENTIALS"),
                "{message}"
            );
            assert!(!message.contains("SUPERSECRET"), "{message}");
        }
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let path = Path::new("/nonexistent/warmcache/key.json");
        let Err(err) = read_key_file(path) else {
            panic!("a missing file is an error");
        };
        assert_eq!(
            err.to_string(),
            "cannot use GOOGLE_APPLICATION_CREDENTIALS=\"/nonexistent/warmcache/key.json\": the file does not exist"
        );
    }
}
