//! The error type of the code that runs pods (stage2 and the stage1
//! flavors): what was being done, about which path, pod or app, and the
//! error of the system call, I/O or library that failed, kept as the
//! source. Every stage prints it as one line (`what: source`), as the ABI
//! asks of the messages a flavor prints; stage0's CLI wraps its own errors
//! with anyhow.

use std::fmt::Display;

/// A source error, whatever library it comes from (nix, rustix, std::io,
/// caps, seccompiler, or an [`Error`] given more context).
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call failed while doing `what`.
    #[error("{what}: {source}")]
    Failed {
        what: String,
        #[source]
        source: Source,
    },
    /// What the pod's manifest, its image or the caller asked for cannot
    /// be done; the message says what and why.
    #[error("{0}")]
    Refused(String),
    /// A typed error of another skiff library (a pod's cgroups, its
    /// store) that already says what and where.
    #[error(transparent)]
    Other(Source),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A refusal with this message.
    pub fn refused(msg: impl Into<String>) -> Error {
        Error::Refused(msg.into())
    }

    /// Another library's error, as it is (`.map_err(Error::other)`).
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Other(Box::new(e))
    }
}

/// A message built as a string is a refusal.
impl From<String> for Error {
    fn from(msg: String) -> Error {
        Error::Refused(msg)
    }
}

/// What was being done when a call failed: `.context("cannot X")` gives
/// the error `cannot X: <the call's error>`, keeping the call's error.
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| Error::Failed { what: what.to_string(), source: Box::new(e) })
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::Failed { what: what().to_string(), source: Box::new(e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn one_line_with_the_source_kept() {
        let e = Err::<(), _>(nix::errno::Errno::EPERM).context("cannot mount /proc").unwrap_err();
        assert_eq!(e.to_string(), "cannot mount /proc: EPERM: Operation not permitted");
        assert_eq!(e.source().and_then(|s| s.downcast_ref::<nix::errno::Errno>()), Some(&nix::errno::Errno::EPERM));
        let e = std::fs::read("/nonexistent/x").with_context(|| format!("cannot read {}", "/nonexistent/x"));
        assert!(e.unwrap_err().to_string().starts_with("cannot read /nonexistent/x: No such file"));
        let refused: Result<()> = Err(Error::from("bad spec".to_string()));
        assert_eq!(refused.context("app web").unwrap_err().to_string(), "app web: bad spec");
    }
}
