//! `ferrogram`: the GNOME desktop client of Ferrogram.

mod i18n;
mod models;

fn main() {
    i18n::init();
}
