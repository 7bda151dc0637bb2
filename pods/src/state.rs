//! Lifecycle states: which directory a pod is in, and what that means
//! together with whether its lock is held.

use std::fmt;

/// The directories under `<store>/pods/`, one per lifecycle stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateDir {
    Embryo,
    Prepare,
    Prepared,
    Run,
    ExitedGarbage,
    Garbage,
}

impl StateDir {
    pub const ALL: [StateDir; 6] = [
        StateDir::Embryo,
        StateDir::Prepare,
        StateDir::Prepared,
        StateDir::Run,
        StateDir::ExitedGarbage,
        StateDir::Garbage,
    ];

    pub fn dir_name(self) -> &'static str {
        match self {
            StateDir::Embryo => "embryo",
            StateDir::Prepare => "prepare",
            StateDir::Prepared => "prepared",
            StateDir::Run => "run",
            StateDir::ExitedGarbage => "exited-garbage",
            StateDir::Garbage => "garbage",
        }
    }

    /// The user-visible state of a pod in this directory, given whether some
    /// process holds its exclusive lock.
    pub fn state(self, locked: bool) -> PodState {
        match (self, locked) {
            (StateDir::Embryo, true) => PodState::Embryo,
            // Its creator died before it could be prepared.
            (StateDir::Embryo, false) => PodState::AbortedPrepare,
            (StateDir::Prepare, true) => PodState::Preparing,
            (StateDir::Prepare, false) => PodState::AbortedPrepare,
            (StateDir::Prepared, true) => PodState::Preparing,
            (StateDir::Prepared, false) => PodState::Prepared,
            (StateDir::Run, true) => PodState::Running,
            (StateDir::Run, false) => PodState::Exited,
            (StateDir::ExitedGarbage, true) => PodState::ExitedDeleting,
            (StateDir::ExitedGarbage, false) => PodState::ExitedGarbage,
            (StateDir::Garbage, true) => PodState::Deleting,
            (StateDir::Garbage, false) => PodState::Garbage,
        }
    }
}

/// What `skiff list` and `skiff status` report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    Embryo,
    Preparing,
    AbortedPrepare,
    Prepared,
    Running,
    Exited,
    ExitedGarbage,
    ExitedDeleting,
    Deleting,
    Garbage,
}

impl PodState {
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Embryo => "embryo",
            PodState::Preparing => "preparing",
            PodState::AbortedPrepare => "aborted-prepare",
            PodState::Prepared => "prepared",
            PodState::Running => "running",
            PodState::Exited => "exited",
            PodState::ExitedGarbage => "exited-garbage",
            PodState::ExitedDeleting => "exited-deleting",
            PodState::Deleting => "deleting",
            PodState::Garbage => "garbage",
        }
    }

    /// True once the pod's stage1 has exited (it ran and is over).
    pub fn has_exited(self) -> bool {
        matches!(self, PodState::Exited | PodState::ExitedGarbage | PodState::ExitedDeleting)
    }
}

impl fmt::Display for PodState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_state_depends_on_lock() {
        assert_eq!(StateDir::Run.state(true), PodState::Running);
        assert_eq!(StateDir::Run.state(false), PodState::Exited);
        assert_eq!(StateDir::Prepare.state(false), PodState::AbortedPrepare);
        assert_eq!(StateDir::Embryo.state(true), PodState::Embryo);
        assert_eq!(StateDir::Embryo.state(false), PodState::AbortedPrepare, "its creator died");
        assert!(PodState::ExitedGarbage.has_exited());
        assert!(!PodState::Running.has_exited());
    }
}
