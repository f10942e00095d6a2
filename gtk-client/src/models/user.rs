//! A person as the app knows them: profile, presence, and the trust state of
//! their keys (pinned fingerprint, verified in person, changed since pinned).

use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    // `user_id` is the property `user-id`, named as in the protocol.
    #[allow(clippy::struct_field_names)]
    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::User)]
    pub struct User {
        #[property(get, construct_only)]
        pub user_id: Cell<i64>,
        #[property(get, set = Self::set_handle, explicit_notify)]
        pub handle: RefCell<String>,
        #[property(get, set = Self::set_display_name, explicit_notify)]
        pub display_name: RefCell<String>,
        #[property(get, set = Self::set_online, explicit_notify)]
        pub online: Cell<bool>,
        /// Milliseconds since the epoch; 0 when unknown.
        #[property(get, set = Self::set_last_seen, explicit_notify)]
        pub last_seen: Cell<i64>,
        /// The pinned key fingerprint (hex groups), empty until keys are fetched.
        #[property(get, set = Self::set_fingerprint, explicit_notify)]
        pub fingerprint: RefCell<String>,
        /// The user compared the safety number and marked it verified.
        #[property(get, set = Self::set_verified, explicit_notify)]
        pub verified: Cell<bool>,
        /// The keys differ from the ones pinned on first use.
        #[property(get, set = Self::set_key_changed, explicit_notify)]
        pub key_changed: Cell<bool>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for User {
        const NAME: &'static str = "FerrogramUser";
        type Type = super::User;
    }

    #[glib::derived_properties]
    impl ObjectImpl for User {}

    impl User {
        crate::models::setters! {
            set_handle => handle: RefCell<String>;
            set_display_name => display_name: RefCell<String>;
            set_fingerprint => fingerprint: RefCell<String>;
            set_online => online: Cell<bool>;
            set_last_seen => last_seen: Cell<i64>;
            set_verified => verified: Cell<bool>;
            set_key_changed => key_changed: Cell<bool>;
        }
    }
}

glib::wrapper! {
    pub struct User(ObjectSubclass<imp::User>);
}

impl User {
    pub fn new(user_id: i64, handle: &str, display_name: &str) -> Self {
        glib::Object::builder()
            .property("user-id", user_id)
            .property("handle", handle)
            .property("display-name", display_name)
            .build()
    }

    /// The name to show: the display name, else `@handle`.
    pub fn name(&self) -> String {
        let name = self.display_name();
        if name.trim().is_empty() {
            format!("@{}", self.handle())
        } else {
            name
        }
    }
}
