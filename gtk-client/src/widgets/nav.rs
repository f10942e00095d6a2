//! The main window's screens as actions (`nav.*`, installed by the window):
//! a page or dialog inside it, or a window transient for it, asks for
//! another screen without naming the window.

use gtk::glib::{self, prelude::*};
use gtk::prelude::*;

/// The Connect screen.
pub const CONNECT: &str = "nav.connect";
/// The Log In screen; `(ss)`: the email and a notice ("" for none).
pub const LOGIN: &str = "nav.login";
/// The Sign Up screen.
pub const SIGNUP: &str = "nav.signup";
/// The Verify Email screen; `(st)`: the email and the seconds until a new
/// code may be asked for.
pub const VERIFY: &str = "nav.verify";
/// The signed-in main view.
pub const MAIN: &str = "nav.main";

fn activate(widget: &impl IsA<gtk::Widget>, name: &str, args: Option<&glib::Variant>) {
    if let Err(e) = widget.activate_action(name, args) {
        tracing::warn!("{name}: {e}");
    }
}

pub fn show_connect(widget: &impl IsA<gtk::Widget>) {
    activate(widget, CONNECT, None);
}

pub fn show_login(widget: &impl IsA<gtk::Widget>, email: Option<&str>, notice: Option<&str>) {
    let args = (email.unwrap_or(""), notice.unwrap_or("")).to_variant();
    activate(widget, LOGIN, Some(&args));
}

/// The email and the notice of a [`LOGIN`] action (empty: none).
pub fn login_args(args: Option<&glib::Variant>) -> (Option<String>, Option<String>) {
    let (email, notice) = args
        .and_then(<(String, String)>::from_variant)
        .unwrap_or_default();
    let some = |s: String| Some(s).filter(|s| !s.is_empty());
    (some(email), some(notice))
}

pub fn show_signup(widget: &impl IsA<gtk::Widget>) {
    activate(widget, SIGNUP, None);
}

pub fn show_verify(widget: &impl IsA<gtk::Widget>, email: &str, cooldown_secs: u64) {
    activate(widget, VERIFY, Some(&(email, cooldown_secs).to_variant()));
}

/// The email and the cool-down of a [`VERIFY`] action.
pub fn verify_args(args: Option<&glib::Variant>) -> (String, u64) {
    args.and_then(<(String, u64)>::from_variant)
        .unwrap_or_default()
}

pub fn show_main(widget: &impl IsA<gtk::Widget>) {
    activate(widget, MAIN, None);
}
