//! Options of `run` and `run-prepared` only: how this one run goes
//! (`--rm`, readiness for systemd), not what the pod is.

use anyhow::Result;
use clap::{Args, ValueEnum};
use skiff_pods::abi::feature;

use crate::pod::flavor::Flavor;

// Options of `run` and `run-prepared` only.
#[derive(Args, Debug)]
pub struct RunOnlyOptions {
    /// Remove the pod as soon as it has exited (`run` still exits with
    /// its status).
    #[arg(long)]
    pub(super) rm: bool,
    /// With NOTIFY_SOCKET (systemd's Type=notify): started (READY=1 once
    /// every app has started), app (the apps' own notifications reach
    /// systemd) or none [default: started when NOTIFY_SOCKET is set and the
    /// flavor can notify, else none].
    #[arg(long, value_enum, value_name = "started|app|none")]
    notify: Option<Notify>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Notify {
    Started,
    App,
    None,
}

impl RunOnlyOptions {
    pub(super) fn check(&self, flavor: &Flavor) -> Result<()> {
        if self.rm {
            flavor.require(feature::REMOVE_ON_EXIT, "--rm")?;
        }
        // exec keeps the PID: descriptors passed to skiff are the flavor's.
        if skiff_rt::activation::Activation::inherited().is_some() {
            flavor.require(feature::SOCKET_ACTIVATION, "LISTEN_FDS")?;
        }
        if let Some(n @ (Notify::Started | Notify::App)) = self.notify {
            let what = if n == Notify::App { "--notify=app" } else { "--notify=started" };
            flavor.require(feature::NOTIFY, what)?;
        }
        Ok(())
    }

    fn notify(&self, flavor: &Flavor) -> Notify {
        let asked = self.notify.unwrap_or(Notify::Started);
        let can = flavor.description.supports(feature::NOTIFY);
        if std::env::var_os("NOTIFY_SOCKET").is_none() || !can {
            Notify::None
        } else {
            asked
        }
    }

    /// The flavor's `run` options, after the stdio ones.
    pub(super) fn args<'a>(&self, stdio: &'a [&'a str], flavor: &Flavor) -> Vec<&'a str> {
        let mut v = stdio.to_vec();
        if self.rm {
            v.push("--rm");
        }
        if self.notify(flavor) == Notify::App {
            v.push("--notify-app");
        }
        v
    }

    /// What the flavor must not inherit: systemd's socket when nothing is
    /// to be sent.
    pub(super) fn env_remove(&self, flavor: &Flavor) -> &'static [&'static str] {
        if self.notify(flavor) == Notify::None {
            &["NOTIFY_SOCKET"]
        } else {
            &[]
        }
    }
}
