//! `ferrogram-cli`: see `ferrogram_cli`.

fn main() {
    std::process::exit(ferrogram_cli::main());
}
