//! `ferrogram-loadgen`: see `ferrogram_client::loadgen`.

fn main() {
    std::process::exit(ferrogram_client::loadgen::main());
}
