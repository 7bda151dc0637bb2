#![cfg_attr(not(test), no_main)]

skiff_stage2::main!(skiff_stage0::cli::main);
