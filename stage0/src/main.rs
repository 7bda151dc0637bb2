#![cfg_attr(not(test), no_main)]

skiff_rt::main!(skiff_stage0::cli::main);
