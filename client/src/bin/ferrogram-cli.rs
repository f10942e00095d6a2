//! `ferrogram-cli`: see `ferrogram_client::cli`.

fn main() {
    std::process::exit(ferrogram_client::cli::main());
}
