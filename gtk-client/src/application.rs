//! The application object: owns the [`AppState`] (the settings and the
//! sign-in state) and the window, moves the window between the sign-in
//! screens and the main view on the state's signals, and is the
//! [`SessionHost`] of each signed-in session.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use adw::subclass::prelude::*;
use ferrogram_client::{Client, ClientError};
use gtk::{gio, glib, prelude::*};

use crate::app_state::AppState;
use crate::error::user_message;
use crate::i18n::tr;
use crate::messaging::SessionHost;
use crate::models::Chat;
use crate::widgets::{FerrogramWindow, PreferencesWindow};
use crate::{locked_keys, runtime, secrets};

pub const APP_ID: &str = "org.ferrogram.Ferrogram";

mod imp {
    use std::cell::OnceCell;

    use super::*;

    #[derive(Default)]
    pub struct FerrogramApplication {
        /// Made at start-up (it reads the settings).
        pub state: OnceCell<AppState>,
        pub window: glib::WeakRef<FerrogramWindow>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FerrogramApplication {
        const NAME: &'static str = "FerrogramApplication";
        type Type = super::FerrogramApplication;
        type ParentType = adw::Application;
    }

    impl ObjectImpl for FerrogramApplication {}

    impl ApplicationImpl for FerrogramApplication {
        fn startup(&self) {
            self.parent_startup();
            let obj = self.obj();
            let state = AppState::new(Rc::new(AppHost(obj.downgrade())));
            state.apply_color_scheme(state.config().color_scheme);
            obj.connect_state(&state);
            let _ = self.state.set(state);
            obj.setup_actions();
            obj.load_css();
        }

        fn activate(&self) {
            self.parent_activate();
            let obj = self.obj();
            if let Some(window) = self.window.upgrade() {
                gtk::prelude::GtkWindowExt::present(&window);
                return;
            }
            let window = FerrogramWindow::new(&*obj, &obj.state());
            self.window.set(Some(&window));
            window.show_loading();
            gtk::prelude::GtkWindowExt::present(&window);
            glib::spawn_future_local(glib::clone!(
                #[weak]
                obj,
                async move { obj.start().await }
            ));
        }

        fn shutdown(&self) {
            if let Some(state) = self.state.get() {
                state.stop();
            }
            self.parent_shutdown();
        }
    }

    impl GtkApplicationImpl for FerrogramApplication {}
    impl AdwApplicationImpl for FerrogramApplication {}
}

glib::wrapper! {
    pub struct FerrogramApplication(ObjectSubclass<imp::FerrogramApplication>)
        @extends adw::Application, gtk::Application, gio::Application,
        @implements gio::ActionGroup, gio::ActionMap;
}

/// The application as each signed-in session sees it (held weakly: a
/// session does not keep the application alive).
struct AppHost(glib::WeakRef<FerrogramApplication>);

impl SessionHost for AppHost {
    fn toast(&self, text: &str) {
        if let Some(app) = self.0.upgrade() {
            app.state().toast(text);
        }
    }

    fn report(&self, err: &ClientError) {
        if let Some(app) = self.0.upgrade() {
            app.state().report(err);
        }
    }

    fn end(&self, notice: Option<String>) -> Pin<Box<dyn Future<Output = ()>>> {
        let app = self.0.upgrade();
        Box::pin(async move {
            if let Some(app) = app {
                app.state().end_session(notice.as_deref()).await;
            }
        })
    }

    fn log_out(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let app = self.0.upgrade();
        Box::pin(async move {
            if let Some(app) = app {
                app.state().log_out().await;
            }
        })
    }

    fn window(&self) -> Option<gtk::Window> {
        self.0.upgrade()?.window().map(Cast::upcast)
    }

    fn current_chat(&self) -> Option<Chat> {
        self.0.upgrade()?.window()?.main_view().current_chat()
    }

    fn notify(&self, id: &str, notification: &gio::Notification) {
        if let Some(app) = self.0.upgrade() {
            app.send_notification(Some(id), notification);
        }
    }
}

impl FerrogramApplication {
    pub fn new() -> Self {
        // Normally a second start raises the running window. Several profiles
        // (XDG_CONFIG_HOME) side by side, as in the UI test, need their own
        // processes.
        let flags = if std::env::var_os("FERROGRAM_NON_UNIQUE").is_some() {
            gio::ApplicationFlags::NON_UNIQUE
        } else {
            gio::ApplicationFlags::default()
        };
        glib::Object::builder()
            .property("application-id", APP_ID)
            .property("flags", flags)
            .build()
    }

    pub fn window(&self) -> Option<FerrogramWindow> {
        self.imp().window.upgrade()
    }

    /// The settings and the sign-in state (made at start-up).
    pub fn state(&self) -> AppState {
        self.imp()
            .state
            .get()
            .cloned()
            .expect("the state is made at start-up")
    }

    /// The window follows the state: the main view when signed in, the
    /// log-in screen when the session ended, toasts.
    fn connect_state(&self, state: &AppState) {
        let app = self.downgrade();
        state.connect_signed_in(move |_, signed_in| {
            if let Some(window) = app.upgrade().and_then(|app| app.window()) {
                window.show_main(signed_in);
            }
        });
        let app = self.downgrade();
        state.connect_signed_out(move |email, notice| {
            if let Some(window) = app.upgrade().and_then(|app| app.window()) {
                window.show_signed_out();
                window.show_login(email, notice);
            }
        });
        let app = self.downgrade();
        state.connect_toast(move |text| {
            if let Some(window) = app.upgrade().and_then(|app| app.window()) {
                window.toast(text);
            }
        });
    }

    #[allow(clippy::unused_self)] // part of start-up, with the other set-up steps
    fn load_css(&self) {
        let Some(display) = gtk::gdk::Display::default() else {
            return;
        };
        let provider = gtk::CssProvider::new();
        provider.load_from_data(include_str!("style.css"));
        gtk::style_context_add_provider_for_display(
            &display,
            &provider,
            gtk::STYLE_PROVIDER_PRIORITY_APPLICATION,
        );
    }

    fn setup_actions(&self) {
        let quit = gio::ActionEntry::builder("quit")
            .activate(|app: &Self, _, _| app.quit())
            .build();
        let preferences = gio::ActionEntry::builder("preferences")
            .activate(|app: &Self, _, _| app.show_preferences())
            .build();
        let about = gio::ActionEntry::builder("about")
            .activate(|app: &Self, _, _| app.show_about())
            .build();
        let logout = gio::ActionEntry::builder("logout")
            .activate(|app: &Self, _, _| {
                let state = app.state();
                glib::spawn_future_local(async move { state.log_out().await });
            })
            .build();
        // Clicking a notification opens its chat.
        let open_chat = gio::ActionEntry::builder("open-chat")
            .parameter_type(Some(&i64::static_variant_type()))
            .activate(|app: &Self, _, param| {
                let Some(chat_id) = param.and_then(i64::from_variant) else {
                    return;
                };
                app.activate();
                if let Some(window) = app.window() {
                    window.main_view().open_chat_by_id(chat_id);
                }
            })
            .build();
        self.add_action_entries([quit, preferences, about, logout, open_chat]);
        self.set_accels_for_action("app.quit", &["<Control>q"]);
        self.set_accels_for_action("app.preferences", &["<Control>comma"]);
        self.set_accels_for_action("window.close", &["<Control>w"]);
    }

    fn show_preferences(&self) {
        let state = self.state();
        let Some(signed_in) = state.signed_in() else {
            return;
        };
        let window = PreferencesWindow::new(&state, &signed_in);
        gtk::prelude::GtkWindowExt::set_transient_for(&window, self.window().as_ref());
        gtk::prelude::GtkWindowExt::present(&window);
    }

    fn show_about(&self) {
        let about = adw::AboutWindow::builder()
            .application_name(tr("Ferrogram"))
            .application_icon("mail-send-symbolic")
            .version(env!("CARGO_PKG_VERSION"))
            .comments(tr("End-to-end encrypted messaging"))
            .license_type(gtk::License::Agpl30)
            .developer_name(tr("The Ferrogram developers"))
            .build();
        gtk::prelude::GtkWindowExt::set_transient_for(&about, self.window().as_ref());
        gtk::prelude::GtkWindowExt::present(&about);
    }

    /// At start: the saved server, then a session kept in the keyring.
    async fn start(&self) {
        let Some(window) = self.window() else { return };
        let state = self.state();
        let config = state.config();
        let Some(server) = config.server.clone() else {
            window.show_connect();
            return;
        };
        let addr = server.addr();
        let client = match runtime::run(Client::connect(addr)).await {
            Ok(client) => client,
            Err(e) => {
                window.show_connect();
                state.toast(&user_message(&e));
                return;
            }
        };
        state.set_client(client.clone());
        let Some(email) = config.last_email.clone() else {
            window.show_login(None, None);
            return;
        };
        let base = client.base_url().to_owned();
        let kept = {
            let email = email.clone();
            runtime::run(async move { secrets::load_session(&base, &email).await }).await
        };
        match kept {
            Ok(Some(kept)) => {
                let resumed = {
                    let client = client.clone();
                    let token = kept.token.clone();
                    runtime::run(async move { client.resume(&token).await }).await
                };
                match resumed {
                    Ok(session) => {
                        let session = Arc::new(session);
                        let locked = locked_keys::load(client.addr(), session.user_id());
                        // The kept wrap key opens the sealed keys: straight in.
                        if let (Some(key), Some(sealed)) = (kept.wrap_key, locked.clone()) {
                            let s = session.clone();
                            let opened =
                                runtime::run(async move { s.unlock_with_key(&key, &sealed).await })
                                    .await;
                            match opened {
                                Ok(()) => {
                                    state.sign_in(session).await;
                                    return;
                                }
                                Err(e) => tracing::info!("the kept keys did not open: {e}"),
                            }
                        }
                        // A kept token proves the session, but without a wrap
                        // key that opens them (none kept, or the password
                        // changed elsewhere) the private keys open only with
                        // the password: ask for it to unlock.
                        state.set_locked(session, locked);
                        window.show_login(
                            Some(&email),
                            Some(&tr(
                                "Welcome back. Enter your password to unlock your messages.",
                            )),
                        );
                    }
                    Err(e) => {
                        tracing::info!("stored session not usable: {e}");
                        window.show_login(Some(&email), None);
                    }
                }
            }
            Ok(None) | Err(_) => window.show_login(Some(&email), None),
        }
    }
}

impl Default for FerrogramApplication {
    fn default() -> Self {
        Self::new()
    }
}
