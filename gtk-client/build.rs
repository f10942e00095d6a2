//! Compiles the translations (po/*.po) into gettext catalogues under
//! `$OUT_DIR/locale/<lang>/LC_MESSAGES/ferrogram.mo`, so a build run from
//! `target/` finds them (see `i18n::init`). Without `msgfmt` (package
//! gettext) the app still builds and shows the English strings.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=po");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let locale_dir = Path::new(&out_dir).join("locale");
    let Ok(entries) = std::fs::read_dir("po") else {
        return;
    };
    let mut languages: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "po"))
        .collect();
    languages.sort();
    for po in languages {
        println!("cargo:rerun-if-changed={}", po.display());
        let Some(lang) = po.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let dir = locale_dir.join(lang).join("LC_MESSAGES");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            println!("cargo:warning=cannot create {}: {e}", dir.display());
            continue;
        }
        let status = Command::new("msgfmt")
            .arg("--check")
            .arg("-o")
            .arg(dir.join("ferrogram.mo"))
            .arg(&po)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("msgfmt failed on {} ({s})", po.display()),
            Err(e) => println!(
                "cargo:warning=msgfmt not found ({e}): {lang} is not compiled; install gettext"
            ),
        }
    }
}
