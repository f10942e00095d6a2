//! What the application holds, below the views: the settings and where
//! signing in stands (no server, a server, a kept session waiting for the
//! password, or one [`SignedInSession`]). The window and the sign-in pages
//! get it as a property; it tells the application what to show with the
//! signals `signed-in`, `signed-out` and `toast`, and names no view.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use ferrogram_client::{Client, ClientError, LockedKeys, Session};
use gtk::glib;
use gtk::glib::subclass::Signal;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::config::{ColorScheme, Config};
use crate::error::{secret_message, user_message};
use crate::i18n::tr;
use crate::messaging::SessionHost;
use crate::models::{Account, User};
use crate::signed_in::SignedInSession;
use crate::{locked_keys, runtime, secrets};

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct AppState {
        pub config: RefCell<Config>,
        pub sign_in: RefCell<SignInState>,
        /// Given to each signed-in session.
        pub host: OnceCell<Rc<dyn SessionHost>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for AppState {
        const NAME: &'static str = "FerrogramAppState";
        type Type = super::AppState;
    }

    impl ObjectImpl for AppState {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            SIGNALS.get_or_init(|| {
                vec![
                    // A session is signed in: show its chats.
                    Signal::builder("signed-in")
                        .param_types([SignedInSession::static_type()])
                        .build(),
                    // The session ended: the log-in screen, with the email
                    // and a notice (either may be null).
                    Signal::builder("signed-out")
                        .param_types([String::static_type(), String::static_type()])
                        .build(),
                    // A short notice for the main window.
                    Signal::builder("toast")
                        .param_types([String::static_type()])
                        .build(),
                ]
            })
        }
    }
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
    pub struct AppState(ObjectSubclass<imp::AppState>);
}

impl AppState {
    /// The settings from disk; `host` is what each signed-in session gets.
    pub fn new(host: Rc<dyn SessionHost>) -> Self {
        let obj: Self = glib::Object::new();
        obj.imp().config.replace(Config::load());
        let _ = obj.imp().host.set(host);
        obj
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

    /// Applies the colour scheme (follow the desktop, or force one) now.
    #[allow(clippy::unused_self)] // an application-wide setting, called on its state
    pub fn apply_color_scheme(&self, scheme: ColorScheme) {
        adw::StyleManager::default().set_color_scheme(match scheme {
            ColorScheme::System => adw::ColorScheme::Default,
            ColorScheme::Light => adw::ColorScheme::ForceLight,
            ColorScheme::Dark => adw::ColorScheme::ForceDark,
        });
    }

    /// Applies the colour scheme and keeps it in the settings.
    pub fn set_color_scheme(&self, scheme: ColorScheme) {
        self.apply_color_scheme(scheme);
        self.update_config(|c| c.color_scheme = scheme);
    }

    /// The connection to the chosen server, if there is one.
    pub fn client(&self) -> Option<Client> {
        match &*self.imp().sign_in.borrow() {
            SignInState::NoServer => None,
            SignInState::SignedOut(client) => Some(client.clone()),
            SignInState::Locked { session, .. } => Some(session.client().clone()),
            SignInState::SignedIn(signed_in) => Some(signed_in.client()),
        }
    }

    /// A (new) server was chosen: nobody is signed in on it.
    pub fn set_client(&self, client: Client) {
        let old = self.imp().sign_in.replace(SignInState::SignedOut(client));
        if let SignInState::SignedIn(signed_in) = old {
            signed_in.stop();
        }
    }

    /// A session resumed from the keyring whose keys open only with the
    /// password.
    pub fn set_locked(&self, session: Arc<Session>, keys: Option<LockedKeys>) {
        self.imp()
            .sign_in
            .replace(SignInState::Locked { session, keys });
    }

    /// The signed-in session, if someone is signed in.
    pub fn signed_in(&self) -> Option<SignedInSession> {
        match &*self.imp().sign_in.borrow() {
            SignInState::SignedIn(signed_in) => Some(signed_in.clone()),
            _ => None,
        }
    }

    /// Shows a short notice in the main window (the `toast` signal).
    pub fn toast(&self, text: &str) {
        self.emit_by_name::<()>("toast", &[&text]);
    }

    /// Shows an error: a toast, or the log-in screen when the session ended.
    pub fn report(&self, err: &ClientError) {
        if err.is_unauthorized() && self.imp().sign_in.borrow().session().is_some() {
            glib::spawn_future_local(glib::clone!(
                #[weak(rename_to = state)]
                self,
                async move {
                    state
                        .end_session(Some(&tr("Your session has ended. Please log in again.")))
                        .await;
                }
            ));
        } else {
            self.toast(&user_message(err));
        }
    }

    /// A session resumed from the keyring that the password can unlock
    /// (without a new log-in), when it is `email`'s.
    pub fn unlockable(&self, email: &str) -> Option<(Arc<Session>, LockedKeys)> {
        let SignInState::Locked {
            session,
            keys: Some(keys),
        } = &*self.imp().sign_in.borrow()
        else {
            return None;
        };
        (!session.has_keys() && session.cached_me().email.eq_ignore_ascii_case(email.trim()))
            .then(|| (session.clone(), keys.clone()))
    }

    /// After a log-in (or unlock) with the password: keep the token and the
    /// sealed keys, build the account and open the main view (`signed-in`).
    pub async fn sign_in(&self, session: Arc<Session>) {
        let previous = self.imp().sign_in.take();
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
        let host = self
            .imp()
            .host
            .get()
            .cloned()
            .expect("the state is built with its host");
        let signed_in = SignedInSession::new(host, session, &account);
        self.imp()
            .sign_in
            .replace(SignInState::SignedIn(signed_in.clone()));

        match signed_in.keep().await {
            Ok(()) => account.set_token_stored(true),
            Err(e) => {
                tracing::info!("{e}");
                self.toast(&secret_message(&e));
            }
        }
        signed_in.start();
        self.emit_by_name::<()>("signed-in", &[&signed_in]);
    }

    /// Logs out on the server (best effort) and forgets the token.
    pub async fn log_out(&self) {
        let session = self.imp().sign_in.borrow().session();
        if let Some(session) = session {
            let s = session.clone();
            if let Err(e) = runtime::run(async move { s.logout().await }).await {
                tracing::info!("log out: {e}");
            }
        }
        self.end_session(None).await;
    }

    /// Forgets the session here (after log-out, revoke, deletion or expiry)
    /// and shows the log-in screen (`signed-out`).
    pub async fn end_session(&self, notice: Option<&str>) {
        let previous = self.imp().sign_in.take();
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
            self.imp().sign_in.replace(SignInState::SignedOut(client));
        }
        if let Some(session) = session {
            locked_keys::forget(session.client().addr(), session.user_id());
            let base = session.client().base_url().to_owned();
            let email = session.cached_me().email;
            let _ = runtime::run(async move { secrets::clear_session(&base, &email).await }).await;
        }
        self.emit_by_name::<()>("signed-out", &[&email, &notice]);
    }

    /// At shutdown: the signed-in session's connection and tasks stop.
    pub fn stop(&self) {
        if let SignInState::SignedIn(signed_in) = self.imp().sign_in.take() {
            signed_in.stop();
        }
    }

    pub fn connect_signed_in(&self, f: impl Fn(&Self, &SignedInSession) + 'static) {
        self.connect_closure(
            "signed-in",
            false,
            glib::closure_local!(move |state: &Self, signed_in: &SignedInSession| {
                f(state, signed_in);
            }),
        );
    }

    /// `f(email, notice)` after the session ended.
    pub fn connect_signed_out(&self, f: impl Fn(Option<&str>, Option<&str>) + 'static) {
        self.connect_closure(
            "signed-out",
            false,
            glib::closure_local!(
                move |_: &Self, email: Option<String>, notice: Option<String>| {
                    f(email.as_deref(), notice.as_deref());
                }
            ),
        );
    }

    pub fn connect_toast(&self, f: impl Fn(&str) + 'static) {
        self.connect_closure(
            "toast",
            false,
            glib::closure_local!(move |_: &Self, text: String| f(&text)),
        );
    }
}
