//! The `skiff` binary: the library's CLI behind skiff-rt's start.

#![cfg_attr(not(test), no_main)]
// The package's dependencies are the library's; the binary links them
// through it (the lint checks them on the library).
#![allow(unused_crate_dependencies)]

skiff_rt::main!(skiff_stage0::cli::main);
