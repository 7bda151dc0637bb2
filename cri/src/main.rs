//! The `skiff-cri` binary; all of it is the library's (`skiff_cri`), which
//! the fuzz targets link too.

// The library uses the package's dependencies; this root only calls it.
#![allow(unused_crate_dependencies)]

fn main() {
    skiff_cri::serve::main()
}
