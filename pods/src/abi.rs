//! The stage0 → stage1 hand-off, as constants both sides compile against.
//! The normative text is `docs/stage1-abi.md`.

/// Version of the stage1 ABI described in `docs/stage1-abi.md`.
pub const ABI_VERSION: u32 = 1;

/// Environment variable holding the inherited, exclusively locked pod
/// directory fd. The flavor must keep it open for the pod's whole life.
pub const LOCK_FD_ENV: &str = "SKIFF_LOCK_FD";

/// Environment variable with the ABI version stage0 speaks.
pub const ABI_ENV: &str = "SKIFF_STAGE1_ABI";

/// Flavor binaries are named `skiff-stage1-<flavor>`.
pub fn flavor_binary(flavor: &str) -> String {
    format!("skiff-stage1-{flavor}")
}
