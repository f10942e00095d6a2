//! The signed-in session: one GObject that owns everything that exists only
//! while someone is signed in (the client library's session, the account,
//! the chat list and the live messaging). Views get it as a property; when
//! the session ends the application stops it and drops it, so no view can
//! see half of one session and half of another. What it needs of the
//! application (toasts, the end of the session, the window) comes in as a
//! [`SessionHost`]: it names no application type.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use ferrogram_client::{Client, ClientError, Session};
use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::messaging::{Messaging, SessionHost};
use crate::models::{Account, ChatList, User};
use crate::{locked_keys, runtime, secrets};

mod imp {
    use super::*;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::SignedInSession)]
    pub struct SignedInSession {
        /// The account: its user, email, server and connection state.
        #[property(get, construct_only)]
        pub account: OnceCell<Account>,
        /// The chats of this account (empty until the first connection).
        #[property(get)]
        pub chats: ChatList,
        /// The application around it: toasts, the window, the end of the
        /// session.
        pub host: OnceCell<Rc<dyn SessionHost>>,
        pub session: OnceCell<Arc<Session>>,
        pub messaging: RefCell<Option<Messaging>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for SignedInSession {
        const NAME: &'static str = "FerrogramSignedInSession";
        type Type = super::SignedInSession;
    }

    #[glib::derived_properties]
    impl ObjectImpl for SignedInSession {
        fn dispose(&self) {
            self.obj().stop();
        }
    }
}

glib::wrapper! {
    pub struct SignedInSession(ObjectSubclass<imp::SignedInSession>);
}

impl SignedInSession {
    pub fn new(host: Rc<dyn SessionHost>, session: Arc<Session>, account: &Account) -> Self {
        let obj: Self = glib::Object::builder().property("account", account).build();
        let _ = obj.imp().host.set(host);
        let _ = obj.imp().session.set(session);
        obj
    }

    fn host(&self) -> Rc<dyn SessionHost> {
        self.imp()
            .host
            .get()
            .cloned()
            .expect("a signed-in session is built with its host")
    }

    /// Connects to the server's event stream and keeps the models in step.
    pub fn start(&self) {
        let imp = self.imp();
        if let Some(old) = imp.messaging.take() {
            old.stop();
        }
        let messaging =
            Messaging::start(self.host(), self.session(), &self.account(), &self.chats());
        imp.messaging.replace(Some(messaging));
    }

    /// Closes the connection and aborts every task of this session (again
    /// in `dispose`; twice is harmless).
    pub fn stop(&self) {
        if let Some(messaging) = self.imp().messaging.take() {
            messaging.stop();
        }
        self.chats().clear();
    }

    /// The client library's session (token, keys, REST calls).
    pub fn session(&self) -> Arc<Session> {
        self.imp()
            .session
            .get()
            .cloned()
            .expect("a signed-in session is built with its session")
    }

    pub fn client(&self) -> Client {
        self.session().client().clone()
    }

    /// The live side; `None` once the session was stopped.
    pub fn messaging(&self) -> Option<Messaging> {
        self.imp().messaging.borrow().clone()
    }

    pub fn user(&self) -> User {
        self.account().user()
    }

    pub fn toast(&self, text: &str) {
        self.host().toast(text);
    }

    /// Shows an error: a toast, or the log-in screen when the session ended.
    pub fn report(&self, err: &ClientError) {
        self.host().report(err);
    }

    /// Ends this session here (after revoke, deletion or expiry).
    pub async fn end(&self, notice: Option<&str>) {
        self.host().end(notice.map(str::to_owned)).await;
    }

    /// Logs out on the server (best effort) and ends the session here.
    pub async fn log_out(&self) {
        self.host().log_out().await;
    }

    /// Keeps the session for the next start: the token and the wrap key in
    /// the keyring, the keys sealed with that wrap key on disk (the three
    /// open the app without the password). Again after a password change,
    /// which changes the wrap key.
    pub async fn keep(&self) -> Result<(), secrets::SecretError> {
        let session = self.session();
        let me = session.cached_me();
        let base = session.client().base_url().to_owned();
        let kept = secrets::KeptSession {
            token: zeroize::Zeroizing::new(session.token().to_owned()),
            wrap_key: session.wrap_key(),
        };
        runtime::run(async move { secrets::store_session(&base, &me.email, &kept).await }).await?;
        // Only useful with the token kept.
        let s = session.clone();
        if let Ok(Some(locked)) = runtime::run(async move { s.locked_keys().await }).await {
            locked_keys::save(session.client().addr(), &locked);
        }
        Ok(())
    }
}
