//! The application object: owns the settings and the sign-in state (no
//! server, a server, a kept session waiting for the password, or one
//! [`SignedInSession`]), and moves the window between the sign-in screens
//! and the main view.

use std::sync::Arc;

use adw::subclass::prelude::*;
use ferrogram_client::{Client, ClientError, LockedKeys, Session};
use gtk::{gio, glib, prelude::*};

use crate::config::{ColorScheme, Config};
use crate::error::{secret_message, user_message};
use crate::i18n::tr;
use crate::models::{Account, User};
use crate::signed_in::SignedInSession;
use crate::widgets::{FerrogramWindow, PreferencesWindow};
use crate::{locked_keys, runtime, secrets};

pub const APP_ID: &str = "org.ferrogram.Ferrogram";

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    pub struct FerrogramApplication {
        pub config: RefCell<Config>,
        pub state: RefCell<SignInState>,
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
            self.config.replace(Config::load());
            obj.apply_color_scheme(self.config.borrow().color_scheme);
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
            let window = FerrogramWindow::new(&obj);
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
            if let SignInState::SignedIn(signed_in) = self.state.take() {
                signed_in.stop();
            }
            self.parent_shutdown();
        }
    }

    impl GtkApplicationImpl for FerrogramApplication {}
    impl AdwApplicationImpl for FerrogramApplication {}
}

/// Where signing in stands: one value, so the parts cannot disagree.
#[derive(Default)]
pub enum SignInState {
    /// No server chosen, or it did not answer.
    #[default]
    NoServer,
    /// A server, nobody signed in.
    SignedOut(Client),
    /// A session resumed from the keyring whose sealed keys open only with
    /// the password (no keys on disk: a new log-in replaces it).
    Locked {
        session: Arc<Session>,
        keys: Option<LockedKeys>,
    },
    SignedIn(SignedInSession),
}

impl SignInState {
    /// The client library's session, signed in or waiting for the password.
    fn session(&self) -> Option<Arc<Session>> {
        match self {
            Self::NoServer | Self::SignedOut(_) => None,
            Self::Locked { session, .. } => Some(session.clone()),
            Self::SignedIn(signed_in) => Some(signed_in.session()),
        }
    }
}

glib::wrapper! {
    pub struct FerrogramApplication(ObjectSubclass<imp::FerrogramApplication>)
        @extends adw::Application, gtk::Application, gio::Application,
        @implements gio::ActionGroup, gio::ActionMap;
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

    /// The running application (there is one per process).
    pub fn get() -> Self {
        gio::Application::default()
            .and_downcast::<Self>()
            .expect("the application is a FerrogramApplication")
    }

    pub fn window(&self) -> Option<FerrogramWindow> {
        self.imp().window.upgrade()
    }

    pub fn config(&self) -> Config {
        self.imp().config.borrow().clone()
    }

    /// Changes the settings and writes them to disk.
    pub fn update_config(&self, change: impl FnOnce(&mut Config)) {
        let mut config = self.imp().config.borrow_mut();
        change(&mut config);
        config.save();
    }

    /// The connection to the chosen server, if there is one.
    pub fn client(&self) -> Option<Client> {
        match &*self.imp().state.borrow() {
            SignInState::NoServer => None,
            SignInState::SignedOut(client) => Some(client.clone()),
            SignInState::Locked { session, .. } => Some(session.client().clone()),
            SignInState::SignedIn(signed_in) => Some(signed_in.client()),
        }
    }

    /// A (new) server was chosen: nobody is signed in on it.
    pub fn set_client(&self, client: Client) {
        let old = self.imp().state.replace(SignInState::SignedOut(client));
        if let SignInState::SignedIn(signed_in) = old {
            signed_in.stop();
        }
    }

    /// The signed-in session, if someone is signed in.
    pub fn signed_in(&self) -> Option<SignedInSession> {
        match &*self.imp().state.borrow() {
            SignInState::SignedIn(signed_in) => Some(signed_in.clone()),
            _ => None,
        }
    }

    pub fn toast(&self, text: &str) {
        if let Some(window) = self.window() {
            window.toast(text);
        }
    }

    /// Shows an error: a toast, or the log-in screen when the session ended.
    pub fn report(&self, err: &ClientError) {
        if err.is_unauthorized() && self.imp().state.borrow().session().is_some() {
            glib::spawn_future_local(glib::clone!(
                #[weak(rename_to = app)]
                self,
                async move {
                    app.end_session(Some(&tr("Your session has ended. Please log in again.")))
                        .await
                }
            ));
        } else {
            self.toast(&user_message(err));
        }
    }

    #[allow(clippy::unused_self)] // an application-wide setting, called on the app
    pub fn apply_color_scheme(&self, scheme: ColorScheme) {
        let manager = adw::StyleManager::default();
        manager.set_color_scheme(match scheme {
            ColorScheme::System => adw::ColorScheme::Default,
            ColorScheme::Light => adw::ColorScheme::ForceLight,
            ColorScheme::Dark => adw::ColorScheme::ForceDark,
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
                glib::spawn_future_local(glib::clone!(
                    #[weak]
                    app,
                    async move { app.log_out().await }
                ));
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
        let Some(signed_in) = self.signed_in() else {
            return;
        };
        let window = PreferencesWindow::new(&signed_in);
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
        let config = self.config();
        let Some(server) = config.server.clone() else {
            window.show_connect();
            return;
        };
        let addr = server.addr();
        let client = match runtime::run(Client::connect(addr)).await {
            Ok(client) => client,
            Err(e) => {
                window.show_connect();
                self.toast(&user_message(&e));
                return;
            }
        };
        self.set_client(client.clone());
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
                                    self.sign_in(session).await;
                                    return;
                                }
                                Err(e) => tracing::info!("the kept keys did not open: {e}"),
                            }
                        }
                        // A kept token proves the session, but without a wrap
                        // key that opens them (none kept, or the password
                        // changed elsewhere) the private keys open only with
                        // the password: ask for it to unlock.
                        self.imp().state.replace(SignInState::Locked {
                            session,
                            keys: locked,
                        });
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

    /// A session resumed from the keyring that the password can unlock
    /// (without a new log-in), when it is `email`'s.
    pub fn unlockable(&self, email: &str) -> Option<(Arc<Session>, LockedKeys)> {
        let SignInState::Locked {
            session,
            keys: Some(keys),
        } = &*self.imp().state.borrow()
        else {
            return None;
        };
        (!session.has_keys() && session.cached_me().email.eq_ignore_ascii_case(email.trim()))
            .then(|| (session.clone(), keys.clone()))
    }

    /// After a log-in (or unlock) with the password: keep the token and the
    /// sealed keys, build the account and open the main view.
    pub async fn sign_in(&self, session: Arc<Session>) {
        let previous = self.imp().state.take();
        if let SignInState::SignedIn(old) = &previous {
            old.stop();
        }
        // A session resumed from the keyring is replaced by this one.
        if let Some(old) = previous.session() {
            if old.id() != session.id() {
                let id = old.id().clone();
                let s = session.clone();
                runtime::spawn(async move { s.revoke_session(&id).await });
            }
        }
        let me = session.cached_me();
        let base = session.client().base_url().to_owned();
        self.update_config(|c| c.last_email = Some(me.email.clone()));
        let user = User::new(me.id.0, &me.handle, &me.display_name);
        user.set_fingerprint(me.fingerprint.clone());
        let account = Account::new(&user, &me.email, &base);
        account.set_bio(me.bio.clone());
        account.set_verified(me.verified);
        let signed_in = SignedInSession::new(self, session, &account);
        self.imp()
            .state
            .replace(SignInState::SignedIn(signed_in.clone()));

        match signed_in.keep().await {
            Ok(()) => account.set_token_stored(true),
            Err(e) => {
                tracing::info!("{e}");
                self.toast(&secret_message(&e));
            }
        }
        signed_in.start();
        if let Some(window) = self.window() {
            window.show_main(&signed_in);
        }
    }

    /// Logs out on the server (best effort) and forgets the token.
    pub async fn log_out(&self) {
        let session = self.imp().state.borrow().session();
        if let Some(session) = session {
            let s = session.clone();
            if let Err(e) = runtime::run(async move { s.logout().await }).await {
                tracing::info!("log out: {e}");
            }
        }
        self.end_session(None).await;
    }

    /// Forgets the session here (after log-out, revoke, deletion or expiry).
    pub async fn end_session(&self, notice: Option<&str>) {
        let previous = self.imp().state.take();
        let session = previous.session();
        let (client, email) = match previous {
            SignInState::NoServer => (None, None),
            SignInState::SignedOut(client) => (Some(client), None),
            SignInState::Locked { session, .. } => (Some(session.client().clone()), None),
            SignInState::SignedIn(signed_in) => {
                signed_in.stop();
                (Some(signed_in.client()), Some(signed_in.account().email()))
            }
        };
        // The server stays chosen.
        if let Some(client) = client {
            self.imp().state.replace(SignInState::SignedOut(client));
        }
        if let Some(session) = session {
            locked_keys::forget(session.client().addr(), session.user_id());
            let base = session.client().base_url().to_owned();
            let email = session.cached_me().email;
            let _ = runtime::run(async move { secrets::clear_session(&base, &email).await }).await;
        }
        if let Some(window) = self.window() {
            window.show_signed_out();
            window.show_login(email.as_deref(), notice);
        }
    }
}

impl Default for FerrogramApplication {
    fn default() -> Self {
        Self::new()
    }
}
