//! What a CRI call answers when it fails: a gRPC status whose code says
//! what kind of failure it is (what the kubelet acts on) and whose message
//! is skiff's own one-line error.

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The sandbox, container or image asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request asks for something malformed or that skiff refuses.
    #[error("{0}")]
    InvalidArgument(String),
    /// Valid, but not in the present state (a stopped sandbox, say).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not implemented by skiff.
    #[error("{0}")]
    Unimplemented(String),
    /// A deadline the request gave passed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// skiff itself failed, or the host did.
    #[error("{0}")]
    Internal(String),
}

impl CriError {
    /// A failure of the `skiff` CLI, from its last line on stderr: an
    /// unknown pod, app or image is NotFound, a refusal InvalidArgument.
    pub fn from_skiff(stderr: &str) -> CriError {
        // skiff's own error, or clap's for a command line it refused.
        let line = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("skiff: ") || l.starts_with("error: "))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("skiff failed without a message");
        let msg = line.trim_start_matches("skiff: ").trim_start_matches("error: ").to_string();
        const NOT_FOUND: [&str; 4] =
            ["no pod named or with UUID prefix", "no image matches", "has no app", "not found"];
        const INVALID: [&str; 5] =
            ["invalid", "unknown option", "does not support", "is not a sandbox", "cannot be an init app"];
        if NOT_FOUND.iter().any(|p| msg.contains(p)) {
            CriError::NotFound(msg)
        } else if INVALID.iter().any(|p| msg.contains(p)) {
            CriError::InvalidArgument(msg)
        } else if msg.contains(", not running") || msg.contains("is running") {
            CriError::FailedPrecondition(msg)
        } else {
            CriError::Internal(msg)
        }
    }

    pub fn internal(context: &str, e: impl std::fmt::Display) -> CriError {
        CriError::Internal(format!("{context}: {e}"))
    }
}

impl From<CriError> for Status {
    fn from(e: CriError) -> Status {
        let code = match &e {
            CriError::NotFound(_) => Code::NotFound,
            CriError::InvalidArgument(_) => Code::InvalidArgument,
            CriError::FailedPrecondition(_) => Code::FailedPrecondition,
            CriError::Unimplemented(_) => Code::Unimplemented,
            CriError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            CriError::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

/// What a CRI call returns.
pub type Reply<T> = std::result::Result<tonic::Response<T>, Status>;

/// A call's result as its gRPC reply.
pub fn reply<T>(r: Result<T>) -> Reply<T> {
    r.map(tonic::Response::new).map_err(Status::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiffs_errors_get_the_code_the_kubelet_acts_on() {
        let code = |s: &str| Status::from(CriError::from_skiff(s)).code();
        assert_eq!(code("skiff: no pod named or with UUID prefix \"x\"\n"), Code::NotFound);
        assert_eq!(code("progress\nskiff: no image matches \"nope\" (fetch it first)"), Code::NotFound);
        assert_eq!(code("skiff: invalid image reference \"A:B:C\""), Code::InvalidArgument);
        assert_eq!(code("skiff: pod 1 is exited, not running"), Code::FailedPrecondition);
        assert_eq!(code("skiff: cannot write"), Code::Internal);
        assert_eq!(code(""), Code::Internal);
        let clap =
            "error: unexpected argument '--x' found\n\nUsage: skiff run\n\nFor more information, try '--help'.\n";
        assert_eq!(CriError::from_skiff(clap).to_string(), "unexpected argument '--x' found");
    }
}
