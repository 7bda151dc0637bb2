fn main() {
    std::process::exit(skiff_stage0::cli::main());
}
