//! `ferrogram-loadgen`: see `ferrogram_loadgen`.

fn main() {
    std::process::exit(ferrogram_loadgen::main());
}
