//! The optional bearer token (`--http-token-file`): compared in constant time, through
//! SHA-256 digests so that not even its length shows in the timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Http;
use super::error::ApiError;

/// A token's digest, as the server keeps it.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether an `Authorization` header's value carries the token whose digest is `expected`.
pub fn authorized(header: Option<&[u8]>, expected: &[u8; 32]) -> bool {
    let Some(value) = header else {
        return false;
    };
    let Some(token) = value.strip_prefix(b"Bearer ") else {
        return false;
    };
    let got: [u8; 32] = Sha256::digest(token).into();
    got[..].ct_eq(&expected[..]).into()
}

/// Middleware: refuses requests without the token, when one is configured.
pub async fn require(State(http): State<Arc<Http>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &http.token_digest {
        let header = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !authorized(header, expected) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_bearer_token_passes() {
        let d = digest("s3cret");
        assert!(authorized(Some(b"Bearer s3cret"), &d));
        assert!(!authorized(Some(b"Bearer s3cre"), &d));
        assert!(!authorized(Some(b"s3cret"), &d));
        assert!(!authorized(Some(b"Basic s3cret"), &d));
        assert!(!authorized(None, &d));
    }
}
