//! The signed-in account and the state of the connection to its server.

use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use super::User;

/// The live connection to the server, shown in the sidebar and as a banner.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[enum_type(name = "FerrogramConnectionState")]
pub enum ConnectionState {
    #[default]
    Offline,
    Connecting,
    Online,
}

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use super::*;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::Account)]
    pub struct Account {
        /// The account as a [`User`] (for own messages and the avatar).
        #[property(get, construct_only)]
        pub user: OnceCell<User>,
        #[property(get, set = Self::set_email, explicit_notify)]
        pub email: RefCell<String>,
        #[property(get, set = Self::set_bio, explicit_notify)]
        pub bio: RefCell<String>,
        #[property(get, set = Self::set_verified, explicit_notify)]
        pub verified: Cell<bool>,
        /// `http(s)://host:port` of the server.
        #[property(get, set = Self::set_server, explicit_notify)]
        pub server: RefCell<String>,
        #[property(get, set = Self::set_connection, explicit_notify, builder(ConnectionState::default()))]
        pub connection: Cell<ConnectionState>,
        /// The session token is kept in the Secret Service (else only in memory).
        #[property(get, set = Self::set_token_stored, explicit_notify)]
        pub token_stored: Cell<bool>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Account {
        const NAME: &'static str = "FerrogramAccount";
        type Type = super::Account;
    }

    #[glib::derived_properties]
    impl ObjectImpl for Account {}

    impl Account {
        crate::models::setters! {
            set_email => email: RefCell<String>;
            set_bio => bio: RefCell<String>;
            set_verified => verified: Cell<bool>;
            set_server => server: RefCell<String>;
            set_connection => connection: Cell<ConnectionState>;
            set_token_stored => token_stored: Cell<bool>;
        }
    }
}

glib::wrapper! {
    pub struct Account(ObjectSubclass<imp::Account>);
}

impl Account {
    pub fn new(user: &User, email: &str, server: &str) -> Self {
        glib::Object::builder()
            .property("user", user)
            .property("email", email)
            .property("server", server)
            .build()
    }
}
